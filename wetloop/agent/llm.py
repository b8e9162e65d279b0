"""The LLM proposer: any OpenAI-compatible endpoint, structured outputs, prompts from `prompts/`.

The reply schema is built from the spec, one field per intervention variable, for every kind:
a number with its limits (`integer` type for an integer variable), a name (an `enum` of the choices
when the spec lists them), and for a set variable a list of `{item, level}` objects (`maxItems` =
max_items), turned back into the `{item: level}` mapping the loop uses. A list, not an object keyed by
item: OpenAI's strict mode wants every property of an object required and supports neither
`propertyNames` nor `maxProperties`, while `enum`, `minimum`/`maximum` and `minItems`/`maxItems` are allowed.

The limits in the schema guide the model; they are not checked when the reply is parsed: an
out-of-bounds number or an unknown name passes through on purpose, and the graph's validation
rejects it with a reason, so it is recorded, never run. The lists are bounded (`maxItems`, and the
reply is cut to the same bounds) and so is the reply's length (`max_tokens`), so a small model cannot
list candidates until the request times out.

A reply that fails to parse, is refused, is cut off, or cannot be fetched becomes a `ProposerReply`
with `problems` and no candidates; the graph records it and falls back to the offline proposer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import openai
from pydantic import BaseModel, Field, ValidationError, create_model

from wetloop.campaign import CampaignSpec, Variable, unsafe_readout_name
from wetloop.prompts import render_prompt

from ._proposal import CandidateDraft, HypothesisDraft, ProposalContext, ProposerReply
from .configuration import LLMSettings

__all__ = ["LLMProposer", "reply_schema"]


def reply_schema(spec: CampaignSpec, max_candidates: int = 48, max_hypotheses: int = 4) -> type[BaseModel]:
    """The structured-output model: up to `max_hypotheses` hypotheses, each with up to `max_candidates`
    candidates having one field per variable (see the module docstring for each kind)."""
    fields: dict[str, Any] = {v.name: _field(v) for v in spec.interventions}
    fields["rationale"] = (str, Field(description="one sentence: why this candidate tests or exploits the hypothesis"))
    candidate = create_model("Candidate", **fields)
    hypothesis = create_model(
        "HypothesisWithCandidates",
        statement=(str, Field(description="a clear, testable hypothesis about the system")),
        candidates=(list[candidate], Field(json_schema_extra={"maxItems": max_candidates})),
    )
    return create_model(
        "ProposerReplySchema", hypotheses=(list[hypothesis], Field(json_schema_extra={"maxItems": max_hypotheses}))
    )


def _field(v: Variable) -> tuple[Any, Any]:
    """The schema field of one variable. Limits go in the JSON schema only (see the module docstring)."""
    about = v.description or v.name
    if v.kind == "categorical":
        enum: dict[str, Any] = {"enum": list(v.choices)} if v.choices else {}
        allowed = f"; one of {', '.join(v.choices)}" if v.choices else ""
        return str, Field(description=f"{about}: a name{allowed}", json_schema_extra=enum or None)
    if v.kind == "set":
        return list[_set_entry(v)], Field(  # type: ignore[misc]
            description=f"{about}: between {v.min_items} and {v.most_items} items, each with its level; an item at most once",
            json_schema_extra={"minItems": v.min_items, "maxItems": v.most_items},
        )
    limits: dict[str, Any] = {"minimum": v.lower, "maximum": v.upper}
    if v.kind == "integer":  # parsed as a float, so 2.5 reaches validation (and its reason) instead of failing the reply
        limits = {"type": "integer", "minimum": int(v.lower), "maximum": int(v.upper)}  # type: ignore[arg-type]
    unit = f" in {v.unit}" if v.unit else ""
    return float, Field(description=f"{about}{unit}, between {v.lower:g} and {v.upper:g}", json_schema_extra=limits)


def _set_entry(v: Variable) -> type[BaseModel]:
    """One chosen item of set variable `v` with its level (a model per variable: its own enums)."""
    title = "".join(part.title() for part in v.name.split("_")) + "Item"
    return create_model(
        title,
        item=(str, Field(description=f"one of {', '.join(v.items or ())}", json_schema_extra={"enum": list(v.items or ())})),
        level=(str, Field(description=f"one of {', '.join(v.levels)}", json_schema_extra={"enum": list(v.levels)})),
    )


def _limits(v: Variable) -> str:
    """One line of the prompt's intervention space."""
    about = f"; {v.description}" if v.description else ""
    if v.kind == "categorical":
        return f"- {v.name}: a name{' (' + ', '.join(v.choices) + ')' if v.choices else ''}{about}"
    if v.kind == "set":
        return (
            f"- {v.name}: a list of {v.min_items} to {v.most_items} items from {', '.join(v.items or ())}, "
            f"each once with a level ({', '.join(v.levels)}){about}"
        )
    whole = "whole number " if v.kind == "integer" else ""
    return f"- {v.name}{f' ({v.unit})' if v.unit else ''}: {whole}{v.lower:g} to {v.upper:g}{about}"


class LLMProposer:
    """Asks an LLM for hypotheses and candidates with structured outputs."""

    name = "llm"

    def __init__(
        self,
        settings: LLMSettings,
        client: openai.OpenAI | None = None,
        on_progress: Callable[[int, float], None] | None = None,
        progress_every_s: float = 15.0,
    ) -> None:
        self.settings = settings
        self.limits = settings  # max_tokens and max_hypotheses bound each reply
        self.client = client or openai.OpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key.get_secret_value() if settings.api_key else "not-needed",
            timeout=settings.timeout_s,
            max_retries=settings.max_retries,
        )
        self.on_progress, self.progress_every_s = on_progress, progress_every_s

    def propose(self, ctx: ProposalContext) -> ProposerReply:
        """Hypotheses and candidates from the LLM, or a reply whose `problems` say why there are none.

        The reply is streamed: the timeout bounds each wait for the next piece (a slow local model
        that keeps writing is not cut off by it), `on_progress(characters, seconds)` hears how far it
        has come every `progress_every_s`, and whatever arrived is kept when the reply is unusable."""
        schema = reply_schema(ctx.spec, ctx.n_candidates, self.limits.max_hypotheses)
        pieces: list[str] = []
        try:
            with self.client.chat.completions.stream(
                model=self.settings.model,
                messages=[
                    {"role": "system", "content": render_prompt("propose_system")},
                    {"role": "user", "content": user_prompt(ctx)},
                ],
                response_format=schema,
                temperature=self.settings.temperature,
                max_tokens=self.limits.max_tokens,
            ) as stream:
                t0 = last = time.monotonic()
                size = 0
                for event in stream:
                    if event.type != "content.delta":
                        continue
                    pieces.append(event.delta)
                    size += len(event.delta)
                    if size > self.limits.reply_chars:  # an endpoint that ignores max_tokens: stop reading
                        return self._problem(
                            f"the LLM reply ran past {self.limits.reply_chars:,} characters (max_tokens="
                            f"{self.limits.max_tokens} was not kept); it was cut off unread (WETLOOP_LLM_MAX_REPLY_CHARS)",
                            "".join(pieces),
                        )
                    if self.on_progress is not None and (now := time.monotonic()) - last >= self.progress_every_s:
                        self.on_progress(sum(map(len, pieces)), now - t0)
                        last = now
                completion = stream.get_final_completion()
        except openai.LengthFinishReasonError:
            return self._problem(
                f"the LLM reply was cut off at max_tokens={self.limits.max_tokens} before it was complete; "
                "raise WETLOOP_LLM_MAX_TOKENS, or ask for fewer candidates per round",
                "".join(pieces),
            )
        except (ValidationError, ValueError) as exc:
            return self._problem(f"the LLM reply did not match the schema: {_first_line(exc)}", "".join(pieces))
        except openai.OpenAIError as exc:
            return self._problem(f"the LLM endpoint failed: {type(exc).__name__}: {_first_line(exc)}", "".join(pieces) or None)
        message = completion.choices[0].message
        if message.refusal:
            return self._problem(f"the LLM refused: {message.refusal}", message.content)
        if message.parsed is None:
            return self._problem("the LLM reply had no parsable content", message.content)
        return self._to_reply(ctx, message.parsed)

    @property
    def waiting_for(self) -> str:
        """What a person waits for while `propose` runs, e.g. for the log before each call."""
        attempts = self.settings.max_retries + 1
        return (
            f"LLM {self.settings.model} at {self.settings.base_url or 'the OpenAI API'} "
            f"(streamed, at most {self.limits.max_tokens} tokens; up to {self.settings.timeout_s:g} s for each piece, "
            f"{attempts} attempt{'s' if attempts > 1 else ''})"
        )

    def _problem(self, text: str, raw: str | None = None) -> ProposerReply:
        kept = (
            None
            if raw is None
            else raw[:RAW_KEPT] + (f"... [{len(raw) - RAW_KEPT} more characters]" if len(raw) > RAW_KEPT else "")
        )
        return ProposerReply(source=self.name, problems=[text], raw=kept)

    def _to_reply(self, ctx: ProposalContext, parsed: BaseModel) -> ProposerReply:
        """The parsed reply as drafts, cut to the schema's list bounds (an endpoint may ignore `maxItems`)
        and its texts to `STATEMENT_CHARS` / `RATIONALE_CHARS`; what was cut is said in `problems`."""
        spec, given = ctx.spec, parsed.hypotheses  # type: ignore[attr-defined]
        hyps = [
            HypothesisDraft(
                statement=clip(h.statement, STATEMENT_CHARS),
                candidates=[
                    CandidateDraft(
                        values={v.name: _value(v, getattr(c, v.name)) for v in spec.interventions},
                        rationale=clip(c.rationale, RATIONALE_CHARS),
                    )
                    for c in h.candidates[: ctx.n_candidates]
                ],
            )
            for h in given[: self.limits.max_hypotheses]
        ]
        problems = []
        if (extra := len(given) - self.limits.max_hypotheses) > 0:
            problems.append(
                f"the LLM stated {len(given)} hypotheses, more than {self.limits.max_hypotheses}; {extra} were dropped"
            )
        listed = [len(h.candidates) for h in given[: self.limits.max_hypotheses]]
        if (dropped := sum(max(0, n - ctx.n_candidates) for n in listed)) > 0:
            problems.append(
                f"the LLM listed up to {max(listed)} candidates under one hypothesis, more than {ctx.n_candidates}; "
                f"{dropped} were dropped"
            )
        long_statements = sum(1 for h in given[: self.limits.max_hypotheses] if len(h.statement) > STATEMENT_CHARS)
        long_rationales = sum(
            1
            for h in given[: self.limits.max_hypotheses]
            for c in h.candidates[: ctx.n_candidates]
            if len(c.rationale) > RATIONALE_CHARS
        )
        if long_statements or long_rationales:
            problems.append(
                f"{long_statements} hypothesis statements longer than {STATEMENT_CHARS} characters and {long_rationales} "
                f"rationales longer than {RATIONALE_CHARS} were cut to that length"
            )
        return ProposerReply(source=self.name, hypotheses=hyps, problems=problems)


def _value(v: Variable, raw: Any) -> Any:
    """A schema field's value as the loop holds it: a set's `[{item, level}]` list becomes `{item: level}`
    (an item named twice keeps its last level; validation then judges the count)."""
    if v.kind == "set":
        return {entry.item: entry.level for entry in raw}
    return raw


RAW_KEPT = 20_000  # characters of an unusable reply kept in the store (a runaway reply can be megabytes)
STATEMENT_CHARS = 500  # a hypothesis statement is stored and shown in later prompts at most this long
RATIONALE_CHARS = 300  # a candidate's rationale likewise
PROMPT_HYPOTHESES = 24  # later prompts list at most this many hypotheses (the most recent)
PROMPT_EXPERIMENTS = 80  # and at most this many experiments (the most recent; the table says how many are left out)


def clip(text: str, most: int) -> str:
    """`text` at most `most` characters, an ellipsis marking where it was cut."""
    return text if len(text) <= most else text[: most - 1] + "…"


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__


def user_prompt(ctx: ProposalContext) -> str:
    spec = ctx.spec
    variables = "\n".join(_limits(v) for v in spec.interventions)
    safety = (
        "\n".join(
            f"- {s.name}: P({s.describe()}{' at any time' if s.series else ''}) must stay under {s.max_probability:g}"
            for s in spec.safety
        )
        or "- none"
    )
    objective = f"{spec.objective.direction} the readout `{spec.objective.readout}`"
    return render_prompt(
        "propose_user",
        question=spec.question,
        objective=objective,
        variables=variables,
        safety=safety,
        round=ctx.round,
        rounds=spec.budget.rounds,
        batch=spec.budget.batch,
        history=_history_table(ctx),
        hypotheses=_hypotheses_text(ctx),
        n_candidates=ctx.n_candidates,
    )


def _history_table(ctx: ProposalContext) -> str:
    """The experiments so far as a markdown table: the variables, the status, and a few readouts."""
    if not ctx.history:
        return "None yet: this is the first round."
    spec = ctx.spec
    readouts = _table_readouts(ctx)
    head = "| " + " | ".join([*spec.variable_names, "status", *readouts]) + " |"
    rows = [head, "|" + "---|" * (len(spec.variable_names) + 1 + len(readouts))]
    if (left_out := len(ctx.history) - PROMPT_EXPERIMENTS) > 0:
        rows.insert(0, f"The {PROMPT_EXPERIMENTS} most recent of {len(ctx.history)} experiments ({left_out} earlier left out):")
    for x, obs in ctx.history[-PROMPT_EXPERIMENTS:]:
        vals = [_cell(v, x.values.get(v.name)) for v in spec.interventions]
        outs = [f"{obs.readouts[r]:.4g}" if r in obs.readouts else "-" for r in readouts]
        rows.append("| " + " | ".join([*vals, obs.status, *outs]) + " |")
    return "\n".join(rows)


def _table_readouts(ctx: ProposalContext, most: int = 8) -> list[str]:
    """The objective's readout, the safety events, then other readouts the lab reported (at most `most`)."""
    first = [ctx.spec.objective.readout] + [unsafe_readout_name(s) for s in ctx.spec.safety]
    seen = sorted({name for _, obs in ctx.history for name in obs.readouts} - set(first))
    return (first + seen)[:most]


def _cell(v: Variable, value: Any) -> str:
    """One value in a table cell: numbers without their unit (the header row has no room for it)."""
    if value is None:
        return "-"
    if isinstance(value, (dict, str)):
        return v.describe(value)
    return f"{value:.4g}" if v.kind == "continuous" else f"{value:g}"


def _hypotheses_text(ctx: ProposalContext) -> str:
    """The hypotheses so far, each statement cut to `STATEMENT_CHARS` (one stored before the cap, or by
    another proposer, is never echoed in full), at most `PROMPT_HYPOTHESES` of them."""
    if not ctx.hypotheses:
        return "None yet."
    shown = ctx.hypotheses[-PROMPT_HYPOTHESES:]
    lines = [
        f"- [{h.status}] {clip(' '.join(h.statement.split()), STATEMENT_CHARS)} "
        f"(for: {len(h.evidence_for)}, against: {len(h.evidence_against)})"
        for h in shown
    ]
    if len(shown) < len(ctx.hypotheses):
        lines.insert(0, f"The {len(shown)} most recent of {len(ctx.hypotheses)} hypotheses:")
    return "\n".join(lines)
