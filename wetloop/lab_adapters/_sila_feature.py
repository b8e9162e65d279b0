"""The `ExperimentRunner` SiLA 2 feature, shared by the server and the client.

The feature is defined in `ExperimentRunner.sila.xml` (the file any SiLA tool reads) and built at
import time by `sila2.framework.Feature`, which compiles its protocol buffers in memory: there is no
generated code to keep in step with the XML, and a SiLA client learns the same definition from a
running server (`SiLAService.GetFeatureDefinition`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sila2.framework import DefinedExecutionError, Feature

from wetloop.campaign import CampaignSpec

__all__ = [
    "FEATURE_XML",
    "ExperimentRunnerFeature",
    "InvalidExperimentError",
    "ExperimentRejectedError",
    "UnknownExperimentError",
    "world_description",
    "world_mismatch",
]

FEATURE_XML = Path(__file__).with_name("ExperimentRunner.sila.xml")
ExperimentRunnerFeature = Feature(FEATURE_XML.read_text())


class InvalidExperimentError(DefinedExecutionError):
    """Server side: the experiment JSON is not a wetloop Experiment."""

    def __init__(self, message: str) -> None:
        super().__init__(ExperimentRunnerFeature.defined_execution_errors["InvalidExperiment"], message=message)


class ExperimentRejectedError(DefinedExecutionError):
    """Server side: the experiment breaks the hard limits of the server's spec."""

    def __init__(self, message: str) -> None:
        super().__init__(ExperimentRunnerFeature.defined_execution_errors["ExperimentRejected"], message=message)


class UnknownExperimentError(DefinedExecutionError):
    """Server side: no run of an experiment with that key."""

    def __init__(self, message: str) -> None:
        super().__init__(ExperimentRunnerFeature.defined_execution_errors["UnknownExperiment"], message=message)


def world_description(spec: CampaignSpec) -> dict[str, Any]:
    """What decides an experiment's outcome on a server: the world, its options, the seed and the
    variables' limits. Budget, objective and the lab reference are the client's business."""
    variables = {v.name: v.model_dump(mode="json", include={"kind", "lower", "upper", "choices"}) for v in spec.interventions}
    blob = {"world": spec.world, "world_options": spec.world_options, "seed": spec.seed, "variables": variables}
    return json.loads(json.dumps(blob))  # JSON round trip: tuples become lists, as they arrive over the wire


def world_mismatch(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """The fields of two world descriptions that differ, each as 'field: ours != theirs'."""
    fields = sorted(set(ours) | set(theirs))
    return [f"{f}: {ours.get(f)!r} != {theirs.get(f)!r}" for f in fields if ours.get(f) != theirs.get(f)]
