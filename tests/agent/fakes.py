"""Fakes for the agent's tests: a scripted OpenAI-compatible endpoint and a fast glucose world.

The fast world is NOT ground truth (the simglucose tests are): it is a small deterministic response
of glucose to the regimen's insulin and carbohydrate, so graph tests run in seconds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
import numpy as np
import openai

from wetloop.campaign import CampaignSpec, Intervention, Trajectory
from wetloop.worlds.simglucose import dosing_schedule


def completion(content: str | None, refusal: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "scripted",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "logprobs": None,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


class ScriptedLLM:
    """Answers each chat request with the next scripted reply; keeps the requests it saw."""

    def __init__(self, replies: list[Callable[[dict], httpx2.Response] | dict | str], piece: int = 16) -> None:
        self.replies = list(replies)
        self.piece = piece  # characters per streamed chunk
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if callable(reply):
            response = reply(body)
        else:
            response = httpx2.Response(200, json=completion(reply if isinstance(reply, str) else json.dumps(reply)))
        return as_event_stream(response, self.piece) if body.get("stream") else response

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(
            api_key="test",
            base_url="http://llm.test/v1",
            max_retries=0,
            http_client=httpx2.Client(transport=httpx2.MockTransport(self)),
        )


def as_event_stream(response: httpx2.Response, piece: int = 16) -> httpx2.Response:
    """A chat completion as an endpoint streams it (server-sent chunks of `piece` characters, then the
    finish reason); an error reply is left as it is."""
    if response.status_code != 200:
        return response
    whole = response.json()
    choice, head = whole["choices"][0], {k: whole[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    message = choice["message"]
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    content = message.get("content") or ""
    deltas += [{"content": content[i : i + piece]} for i in range(0, len(content), piece)]
    if message.get("refusal"):
        deltas.append({"refusal": message["refusal"]})
    chunks = [{**head, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    chunks.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]})
    text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=text.encode())


def toy_glucose_day(spec: CampaignSpec, x: Intervention) -> Trajectory:
    """Glucose falls with insulin on board and rises with carbohydrate on board (3-min grid)."""
    d = dosing_schedule(spec, x, step_min=3.0)
    n = len(d.times_min)
    kernel_i = np.exp(-np.arange(120) / 40.0)
    kernel_c = np.exp(-np.arange(60) / 15.0)
    iob = np.convolve(d.insulin_u, kernel_i)[:n]
    cob = np.convolve(d.carbs_g, kernel_c)[:n]
    g = np.empty(n + 1)
    g[0] = 146.0
    for k in range(n):
        g[k + 1] = np.clip(g[k] + 0.9 * cob[k] / 15.0 - 0.3 * iob[k] + 0.02 * (146.0 - g[k]), 10.0, 600.0)
    times = tuple(float(t) for t in np.append(d.times_min, d.times_min[-1] + 3.0))
    return Trajectory(
        times_min=times,
        series={
            "glucose": tuple(g),
            "cgm": tuple(g),
            "insulin": tuple(np.append(d.insulin_u, 0.0)),
            "carbs": tuple(np.append(d.carbs_g, 0.0)),
        },
        units={"glucose": "mg/dL", "cgm": "mg/dL", "insulin": "U", "carbs": "g"},
    )


FIVE_KINDS = (
    {"name": "dose", "unit": "uM", "lower": 0.01, "upper": 10.0, "scale": "log"},
    {"name": "n_doses", "kind": "integer", "lower": 1, "upper": 6},
    {"name": "medium", "kind": "categorical", "choices": ["rich", "poor"]},
    {"name": "gene", "kind": "categorical"},
    {"name": "cocktail", "kind": "set", "items": ["Gata1", "Pu1", "Fli1"], "levels": ["ko", "oe"], "max_items": 2},
)
"""One variable of every kind (continuous on a log scale, integer, categorical, world-decided name, set)."""


def five_kinds_spec(**fields: Any) -> Any:
    """A spec on `FIVE_KINDS` in an unregistered world; `fields` replace the defaults (e.g. safety)."""
    from wetloop.campaign import CampaignSpec

    base = {
        "name": "kinds",
        "question": "Which mix works?",
        "world": "no-such-world",
        "objective": {"readout": "y"},
        "budget": {"rounds": 2, "batch": 2},
        "interventions": list(FIVE_KINDS),
    }
    return CampaignSpec.model_validate({**base, **fields})


def capped_response(values: dict) -> dict[str, float]:
    """A lab-reported readout that reaches its declared upper bound (1.0) wherever x >= 0.5."""
    x, z = float(values["x"]), float(values["z"])
    return {"y": min(1.0, 2.0 * x), "strain": 0.5 * z}


def capped_spec(action: str = "stop", **fields: Any) -> CampaignSpec:
    """A custom-world spec on `capped_response` whose objective `y` is declared in [0, 1]: its first
    space-filling round already holds a result at the ceiling."""
    base = {
        "name": "capped",
        "question": "Which x maximises y?",
        "world": "custom",
        "world_options": {"function": "tests.agent.fakes:capped_response"},
        "interventions": [{"name": "x", "lower": 0.0, "upper": 1.0}, {"name": "z", "lower": 0.0, "upper": 1.0}],
        "readouts": [{"name": "y", "lower": 0.0, "upper": 1.0}, {"name": "strain"}],
        "objective": {"readout": "y"},
        "safety": [{"name": "strain", "readout": "strain", "above": 0.45, "max_probability": 0.2}],
        "budget": {"rounds": 4, "batch": 3},
        "at_ceiling": {"action": action},
    }
    return CampaignSpec.model_validate({**base, **fields})
