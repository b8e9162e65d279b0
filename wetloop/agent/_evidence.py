"""Hypotheses meet their evidence: after each round, every experiment a hypothesis motivated is
counted for it (it beat the best safe result from earlier rounds) or against it (it did not, was
unsafe, or failed). In a screen (an objective readout "hit"), a gene that is a hit counts for the
hypothesis that named it and a non-hit against it. A new version of the hypothesis is appended; the store keeps every version.

A statement a proposer makes again in a later round is the same hypothesis (`hypothesis_ids`): its
new candidates carry the id it got when first stated, so its evidence accumulates on one record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from wetloop.campaign import CampaignSpec, CampaignStore, Hypothesis, observed_safe, observed_unsafe

__all__ = ["update_hypotheses", "best_before", "hypothesis_ids"]


def _same_words(statement: str) -> str:
    return " ".join(statement.split()).casefold()


def hypothesis_ids(known: Mapping[str, Hypothesis], rnd: int, statements: Iterable[str]) -> dict[str, str]:
    """The id of each statement: that of a known hypothesis stating the same (spacing and case aside),
    else a new id `H<round>-<hash of the statement>` (the round it was first stated in)."""
    stated = {_same_words(h.statement): hid for hid, h in known.items()}
    ids: dict[str, str] = {}
    for statement in statements:
        words = _same_words(statement)
        if words not in stated:
            stated[words] = f"H{rnd}-" + hashlib.sha256(statement.encode()).hexdigest()[:6]
        ids[statement] = stated[words]
    return ids


def best_before(spec: CampaignSpec, store: CampaignStore, cid: str, rnd: int) -> float | None:
    """Best utility among safe, ok observations of rounds before `rnd`."""
    obs = store.observations(cid)
    utils = [
        spec.objective.utility(obs[e.key].readouts[spec.objective.readout])
        for e in store.experiments(cid)
        if e.round < rnd and e.key in obs and observed_safe(spec, obs[e.key])
    ]
    return max(utils) if utils else None


def update_hypotheses(spec: CampaignSpec, store: CampaignStore, cid: str, rnd: int) -> None:
    hyps = store.hypotheses(cid)
    obs = store.observations(cid)
    best = best_before(spec, store, cid, rnd)
    readout = spec.objective.readout
    changed: set[str] = set()
    for exp in store.experiments(cid, round=rnd):
        o = obs.get(exp.key)
        for hid in exp.hypothesis_ids:
            h = hyps.get(hid)
            if h is None or o is None or exp.key in h.motivated:
                continue
            line = f"round {rnd}: {exp.intervention.describe(spec)}"
            if o.status != "ok":
                verdict, text = False, f"{line} -> {o.status}: {o.message[:120]}"
            elif observed_unsafe(spec, o):
                verdict, text = False, f"{line} -> unsafe ({readout} {o.readouts[readout]:.3g})"
            elif readout == "hit":
                verdict = o.readouts.get("hit", 0.0) > 0
                text = f"{line} -> {'hit' if verdict else 'not a hit'} (score {o.readouts.get('score', float('nan')):.3g})"
            else:
                u = spec.objective.utility(o.readouts[readout])
                verdict = best is None or u > best
                ref = "no earlier result" if best is None else f"best before {best:.3g}"
                text = f"{line} -> {readout} {o.readouts[readout]:.3g} ({ref})"
            h = h.model_copy(
                update={
                    "motivated": (*h.motivated, exp.key),
                    "evidence_for": (*h.evidence_for, text) if verdict else h.evidence_for,
                    "evidence_against": h.evidence_against if verdict else (*h.evidence_against, text),
                }
            )
            hyps[hid] = h
            changed.add(hid)
    for hid in sorted(changed):  # one new version per hypothesis per round, with all of the round's evidence
        store.append(cid, "hypothesis", hyps[hid], round=rnd, key=hid)
