"""Worlds: one folder per kind of experiment, each registered once (see `campaign.get_world`).

    simglucose/     a virtual type-1-diabetes patient (UVA/Padova simulator): insulin regimens
    crispr_screen/  a genome-wide CRISPR screen played back from published data: gene knockouts
    custom/         a scientist's own experiment from a spec alone: any variables and readouts,
                    run by a Python function or by a lab over HTTP / SiLA 2
    sbml/           any SBML model run by libroadrunner: dose and input schedules

A world extends the rooms (campaign, worldmodel, planners, lab_adapters); no room imports a world.
`World` is the base class: override what is specific, inherit the generic rest.
"""

from ._base import World, WorldOptions

__all__ = ["World", "WorldOptions"]
