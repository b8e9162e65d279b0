"""A seeded fault layer for a lab server: ASGI middleware that makes the network and the lab misbehave.

Wrap any ASGI app (`FaultInjector(create_app(service), FaultRates(...), seed=0)`) and serve it; each
request under /v1/ (except the /runs audit) draws at most one fault, in arrival order from one
seeded generator:

    drop_request    the connection closes before the server handles the request (it never ran)
    drop_reply      the server handles the request, then the connection closes before the reply
    delay           the server handles it and holds the reply `delay_s` (beyond the client's timeout)
    duplicate       the request is delivered twice; the client gets the second reply
    truncate        the reply body is cut in half: not JSON any more (a transport fault: retried)
    corrupt_result  a `done` result gets an invalid value inside well-formed JSON (a malformed
                    RESULT: the client must quarantine it, never retry it into the model)

`events` lists what was injected (`FaultEvent`), and `corrupted` the experiment keys whose result
was corrupted, so a test can audit the campaign store against them. `wetloop lab serve --faults`
puts the same layer in front of a real server, to try a campaign's robustness by hand.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

__all__ = ["FaultRates", "FaultEvent", "FaultInjector", "FAULTS"]

FAULTS = ("drop_request", "drop_reply", "delay", "duplicate", "truncate", "corrupt_result")
_EXEMPT = re.compile(r"/runs$")


@dataclass(frozen=True)
class FaultRates:
    """Probability of each fault per request (they must sum to at most 1), and the delay's length."""

    drop_request: float = 0.0
    drop_reply: float = 0.0
    delay: float = 0.0
    duplicate: float = 0.0
    truncate: float = 0.0
    corrupt_result: float = 0.0
    delay_s: float = 1.0

    def __post_init__(self) -> None:
        rates = [getattr(self, f) for f in FAULTS]
        if any(r < 0 for r in rates) or sum(rates) > 1 + 1e-9:
            raise ValueError(f"fault rates must be >= 0 and sum to at most 1, got {dict(zip(FAULTS, rates))}")

    @classmethod
    def uniform(cls, total: float, delay_s: float = 1.0) -> FaultRates:
        """Every fault equally likely, `total` the chance that a request gets one."""
        return cls(**{f: total / len(FAULTS) for f in FAULTS}, delay_s=delay_s)


@dataclass(frozen=True)
class FaultEvent:
    fault: str
    method: str
    path: str
    detail: str = ""


@dataclass
class _Reply:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class FaultInjector:
    """ASGI middleware injecting `rates`' faults, reproducibly for a given `seed` and request order."""

    def __init__(self, app: Any, rates: FaultRates, *, seed: int = 0) -> None:
        self.app, self.rates = app, rates
        self.rng = random.Random(seed)
        self.events: list[FaultEvent] = []
        self.corrupted: set[str] = set()
        self.requests = 0

    @property
    def counts(self) -> Counter[str]:
        return Counter(e.fault for e in self.events)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/v1/") or _EXEMPT.search(path):
            return await self.app(scope, receive, send)
        self.requests += 1
        fault, body = self._draw(), await _read_body(receive)
        if fault == "drop_request":
            return await self._drop(scope, send, fault)
        reply, detail = await self._handle(scope, body), ""
        if fault == "duplicate":
            reply = await self._handle(scope, body)
        elif fault == "drop_reply":
            return await self._drop(scope, send, fault)
        elif fault == "delay":
            await asyncio.sleep(self.rates.delay_s)
        elif fault == "truncate":
            reply = _with_body(reply, reply.body[: len(reply.body) // 2])
        elif fault == "corrupt_result":
            reply, detail = self._corrupt(scope, reply)
            fault = fault if detail else None  # nothing to corrupt in this reply: it passes unharmed
        self._note(fault, scope, detail)
        await _send(send, reply)

    # -- faults ---------------------------------------------------------------------------------
    def _draw(self) -> str | None:
        u, edge = self.rng.random(), 0.0
        for fault in FAULTS:
            edge += getattr(self.rates, fault)
            if u < edge:
                return fault
        return None

    async def _drop(self, scope: dict[str, Any], send: Any, fault: str) -> None:
        """Start a reply and return without its body: the server closes the connection mid-reply."""
        self._note(fault, scope)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]})

    def _corrupt(self, scope: dict[str, Any], reply: _Reply) -> tuple[_Reply, str]:
        """Break one value of a finished 'ok' result, keeping the JSON well-formed; return the
        reply and how it was broken ("" and the reply unchanged when it holds no such result)."""
        try:
            data = json.loads(reply.body)
            obs = data["observation"] if scope["method"] == "GET" and data.get("state") == "done" else None
        except (ValueError, KeyError, TypeError):
            obs = None
        if not obs or obs.get("status") != "ok" or not obs.get("trajectory"):
            return reply, ""
        how = self.rng.choice(("null_value", "short_series", "negative_value", "text_readout"))
        _break(obs, how)
        self.corrupted.add(obs["experiment_key"])
        return _with_body(reply, json.dumps(data).encode()), how

    def _note(self, fault: str | None, scope: dict[str, Any], detail: str = "") -> None:
        if fault is not None:
            self.events.append(FaultEvent(fault, scope["method"], scope["path"], detail))

    async def _handle(self, scope: dict[str, Any], body: bytes) -> _Reply:
        """Run the app on (a replay of) the request and capture its reply instead of sending it."""
        delivered = False
        messages: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Future()  # the client stays connected while the app runs
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            messages.append(message)

        await self.app(scope, receive, send)
        start = next(m for m in messages if m["type"] == "http.response.start")
        data = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        return _Reply(start["status"], list(start.get("headers", [])), data)


def _break(obs: dict[str, Any], how: str) -> None:
    """Corrupt `obs` in place (its first series, else its readouts)."""
    series = obs["trajectory"]["series"]
    values = next(iter(series.values()), None)
    if not values or how == "text_readout":
        obs["readouts"] = {k: "high" for k in obs["readouts"]} or {"value": "high"}
    elif how == "null_value":
        values[len(values) // 2] = None
    elif how == "short_series":
        values.pop()
    else:  # negative_value
        values[len(values) // 3] = -abs(values[len(values) // 3]) - 1.0


async def _read_body(receive: Any) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def _with_body(reply: _Reply, body: bytes) -> _Reply:
    headers = [(k, v) for k, v in reply.headers if k.lower() != b"content-length"]
    return _Reply(reply.status, [*headers, (b"content-length", str(len(body)).encode())], body)


async def _send(send: Any, reply: _Reply) -> None:
    await send({"type": "http.response.start", "status": reply.status, "headers": reply.headers})
    await send({"type": "http.response.body", "body": reply.body, "more_body": False})
