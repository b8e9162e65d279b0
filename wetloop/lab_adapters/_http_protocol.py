"""The wetloop lab protocol, version 1: its paths and the JSON bodies both ends exchange.

The client (`HttpLab`) and the server (`_http_server`) share these models, so the OpenAPI schema
the server publishes at `/openapi.json` is the one the client reads. The protocol itself is
described in the docstring of `wetloop.lab_adapters.http`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from wetloop.campaign import CampaignSpec, Observation

__all__ = [
    "PROTOCOL",
    "VERSION",
    "ID_PATTERN",
    "LabInfo",
    "CampaignOut",
    "TicketOut",
    "ExperimentOut",
    "ExperimentEnvelope",
    "RunsOut",
    "Problem",
    "ProblemCode",
    "campaign_id",
    "campaign_path",
    "experiment_path",
    "lab_path",
    "runs_path",
    "local_spec",
]

PROTOCOL: Final = "wetloop-lab"
VERSION = 1  # bump on any change a v1 client could misread; paths carry it (/v1/...)
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"

ProblemCode = Literal[
    "rejected",  # 422: the intervention breaks the campaign's (or the lab's own) hard limits; nothing ran
    "invalid_spec",  # 422: the lab cannot run this campaign spec (e.g. an unknown patient)
    "wrong_world",  # 422: the campaign asks for a world (or world_options) this server does not run
    "key_mismatch",  # 422: the path's key is not the experiment's key
    "unknown_campaign",  # 404: PUT the campaign first
    "unknown_experiment",  # 404: this lab never accepted that key (or it was cancelled and forgotten)
    "unauthorized",  # 401: the server asks for a token (`Authorization: Bearer`), and none or another was sent
    "campaign_conflict",  # 409: that campaign id is registered with a different spec
]


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")  # ignore: a v1 client reads newer v1 servers


class LabInfo(_Body):
    """`GET /v1/lab`: who answers, and which protocol version it speaks."""

    protocol: Literal["wetloop-lab"] = PROTOCOL
    version: int = VERSION
    lab: str = Field(description="the server's name for its lab")
    world: str = Field(description="the world it runs (spec.world)")
    limits: dict[str, tuple[float, float]] | None = Field(
        None, description="the lab's own hard limits per variable (on top of each campaign's), if it has any"
    )


class CampaignOut(_Body):
    """`PUT /v1/campaigns/{campaign}`: the campaign is registered (201) or was already (200)."""

    campaign: str
    world: str
    created: bool


class TicketOut(_Body):
    """`PUT` of an experiment: `accepted` (201 new, 200 already accepted: nothing new runs);
    `DELETE`: `cancelled`. Poll with GET for its progress."""

    campaign: str
    experiment_key: str
    state: Literal["accepted", "cancelled"]
    created: bool = False


class ExperimentOut(_Body):
    """`GET /v1/campaigns/{campaign}/experiments/{key}`: `running` (no observation yet) or `done`."""

    experiment_key: str
    state: Literal["running", "done"]
    observation: Observation | None = Field(None, description="present when state is done")


class ExperimentEnvelope(_Body):
    """What the client reads of a GET reply before it trusts the result: the envelope must parse
    (else the lab speaks another protocol); `observation` is validated on its own (else the result
    is malformed and quarantined)."""

    experiment_key: str
    state: Literal["running", "done"]
    observation: Any = None


class RunsOut(_Body):
    """`GET /v1/campaigns/{campaign}/runs`: how often the lab started and ran each experiment."""

    campaign: str
    started: dict[str, int] = Field(description="times the server asked its lab to start each key")
    completed: dict[str, int] | None = Field(None, description="finished runs per key, when the lab counts them")


class Problem(_Body):
    """Every 4xx reply of the protocol: a code to act on, and a message for a person."""

    error: ProblemCode
    message: str
    reasons: tuple[str, ...] = ()


def local_spec(spec: CampaignSpec) -> CampaignSpec:
    """The spec as the lab runs it: `lab` reset to local (how the client reaches the lab is its own affair)."""
    return spec.with_overrides(lab={"adapter": "local", "options": {}})


def campaign_id(spec: CampaignSpec) -> str:
    """`<spec name>-<hash of the spec without its lab>`: different specs never share an id."""
    blob = json.dumps(local_spec(spec).model_dump(mode="json"), sort_keys=True)
    return f"{spec.name[:100]}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def lab_path() -> str:
    return f"v{VERSION}/lab"


def campaign_path(campaign: str) -> str:
    return f"v{VERSION}/campaigns/{campaign}"


def experiment_path(campaign: str, key: str) -> str:
    return f"{campaign_path(campaign)}/experiments/{key}"


def runs_path(campaign: str) -> str:
    return f"{campaign_path(campaign)}/runs"
