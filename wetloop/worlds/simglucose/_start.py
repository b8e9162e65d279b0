"""A conservative start region for the patient at hand, from body weight alone.

One fixed start box cannot be conservative for every patient: a basal rate that is cautious for an
adolescent of 45 kg overdoses a 35 kg child. With `world_options.start_region: body_weight`, each
regimen variable's start region is scaled from the patient's body weight (simglucose's
`vpatient_params.csv` column BW, what a clinician knows before the first day) with the textbook
starting rules for type-1 diabetes: a total daily dose of 0.5 U/kg, 45% of it as basal insulin, a
carb ratio from the 500 rule (500 / daily dose, g/U) and a correction factor from the 1800 rule
(1800 / daily dose, mg/dL per U). The start region then leans to less insulin than the rules say:
basal 0.5-1.0 x the rule, carb ratio and correction factor 1.2-2.0 x the rule (higher = less insulin),
clipped to the variable's hard limits. The patient's true parameters are never read.
"""

from __future__ import annotations

from wetloop.campaign import CampaignSpec, SpecError

from ._dosing import regimen_of
from ._options import _rows

__all__ = ["body_weight_start", "DAILY_U_PER_KG"]

DAILY_U_PER_KG = 0.5
BASAL_SHARE = 0.45
FACTORS = {"basal": (0.5, 1.0), "carb_ratio": (1.2, 2.0), "correction_factor": (1.2, 2.0)}


def body_weight(patient: str) -> float:
    """kg, from simglucose's `vpatient_params.csv`."""
    for row in _rows("vpatient_params.csv"):
        if row["Name"] == patient:
            return float(row["BW"])
    raise SpecError(f"world_options.patient: {patient!r} is not a simglucose patient, so its body weight is unknown")


def rule_values(patient: str) -> dict[str, float]:
    """The starting rules' basal (U/h), carb ratio (g/U) and correction factor (mg/dL per U)."""
    daily = DAILY_U_PER_KG * body_weight(patient)
    return {"basal": BASAL_SHARE * daily / 24.0, "carb_ratio": 500.0 / daily, "correction_factor": 1800.0 / daily}


def body_weight_start(spec: CampaignSpec) -> CampaignSpec:
    """`spec` with each regimen variable's start region scaled from the patient's body weight."""
    rules = rule_values(str(spec.world_options["patient"]))
    regimen = regimen_of(spec)
    part = {v: "basal" for _, v in regimen.basal} | {v: "carb_ratio" for _, v in regimen.carb_ratio}
    if regimen.correction_factor:
        part[regimen.correction_factor] = "correction_factor"
    variables = []
    for v in spec.interventions:
        data = v.model_dump(mode="json")
        if v.name in part and v.lower is not None and v.upper is not None:
            role = part[v.name]
            lo, hi = (rules[role] * f for f in FACTORS[role])
            lo, hi = max(lo, float(v.lower)), min(hi, float(v.upper))
            if not lo < hi:
                raise SpecError(
                    f"interventions: the body-weight start region of {v.name!r} ({rules[role] * FACTORS[role][0]:.3g}-"
                    f"{rules[role] * FACTORS[role][1]:.3g}) lies outside its hard limits [{v.lower:g}, {v.upper:g}]; widen them"
                )
            data["start"] = [round(lo, 4), round(hi, 4)]
        variables.append(data)
    return spec.with_overrides(interventions=variables)
