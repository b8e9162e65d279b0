"""The LLM proposer: any OpenAI-compatible endpoint, structured outputs, prompts from `prompts/`.

The reply schema is built from the spec (one number field per intervention variable), so the model
is asked for exactly the variables the campaign has. A reply that fails to parse, is refused, or
cannot be fetched becomes a `ProposerReply` with `problems` and no candidates; the graph records it
and falls back to the offline proposer. Out-of-bounds numbers are passed through on purpose: the
graph's validation rejects them with a reason, so they are recorded, never run.
"""

from __future__ import annotations

from typing import Any

import openai
from pydantic import BaseModel, Field, ValidationError, create_model

from wetloop.campaign import CampaignSpec, Variable, unsafe_readout_name
from wetloop.prompts import render_prompt

from ._proposal import CandidateDraft, HypothesisDraft, ProposalContext, ProposerReply
from .configuration import LLMSettings

__all__ = ["LLMProposer", "reply_schema"]


def reply_schema(spec: CampaignSpec) -> type[BaseModel]:
    """The structured-output model: hypotheses, each with candidates having one field per variable."""
    fields: dict[str, Any] = {v.name: _field(v) for v in spec.interventions}
    fields["rationale"] = (str, Field(description="one sentence: why this candidate tests or exploits the hypothesis"))
    candidate = create_model("Candidate", **fields)
    hypothesis = create_model(
        "HypothesisWithCandidates",
        statement=(str, Field(description="a clear, testable hypothesis about the system")),
        candidates=(list[candidate], ...),  # type: ignore[valid-type]
    )
    return create_model("ProposerReplySchema", hypotheses=(list[hypothesis], ...))  # type: ignore[valid-type]


def _field(v: Variable) -> tuple[type, Any]:
    """A number within the hard limits, or a name (e.g. a gene symbol) for a categorical variable."""
    if v.kind == "categorical":
        allowed = f"; one of {', '.join(v.choices)}" if v.choices else ""
        return str, Field(description=f"{v.description or v.name}: a name{allowed}")
    return float, Field(description=f"{v.description or v.name} in {v.unit}, between {v.lower:g} and {v.upper:g}")


def _limits(v: Variable) -> str:
    if v.kind == "categorical":
        return f"- {v.name}: a name{' (' + ', '.join(v.choices) + ')' if v.choices else ''}{'; ' + v.description if v.description else ''}"
    return f"- {v.name} ({v.unit}): {v.lower:g} to {v.upper:g}{'; ' + v.description if v.description else ''}"


class LLMProposer:
    """Asks an LLM for hypotheses and candidates with structured outputs."""

    name = "llm"

    def __init__(self, settings: LLMSettings, client: openai.OpenAI | None = None) -> None:
        self.settings = settings
        self.client = client or openai.OpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key.get_secret_value() if settings.api_key else "not-needed",
            timeout=settings.timeout_s,
            max_retries=settings.max_retries,
        )

    def propose(self, ctx: ProposalContext) -> ProposerReply:
        schema = reply_schema(ctx.spec)
        try:
            completion = self.client.chat.completions.parse(
                model=self.settings.model,
                messages=[
                    {"role": "system", "content": render_prompt("propose_system")},
                    {"role": "user", "content": user_prompt(ctx)},
                ],
                response_format=schema,
                temperature=self.settings.temperature,
            )
        except (ValidationError, ValueError) as exc:
            return self._problem(f"the LLM reply did not match the schema: {_first_line(exc)}")
        except openai.OpenAIError as exc:
            return self._problem(f"the LLM endpoint failed: {type(exc).__name__}: {_first_line(exc)}")
        message = completion.choices[0].message
        if message.refusal:
            return self._problem(f"the LLM refused: {message.refusal}")
        if message.parsed is None:
            return self._problem("the LLM reply had no parsable content")
        return self._to_reply(ctx.spec, message.parsed)

    def _problem(self, text: str) -> ProposerReply:
        return ProposerReply(source=self.name, problems=[text])

    def _to_reply(self, spec: CampaignSpec, parsed: BaseModel) -> ProposerReply:
        hyps = []
        for h in parsed.hypotheses:  # type: ignore[attr-defined]
            drafts = [
                CandidateDraft(values={n: getattr(c, n) for n in spec.variable_names}, rationale=c.rationale)
                for c in h.candidates
            ]
            hyps.append(HypothesisDraft(statement=h.statement, candidates=drafts))
        return ProposerReply(source=self.name, hypotheses=hyps)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__


def user_prompt(ctx: ProposalContext) -> str:
    spec = ctx.spec
    variables = "\n".join(_limits(v) for v in spec.interventions)
    safety = "\n".join(
        f"- {s.name}: P(any {s.series} below {s.below:g}) must stay under {s.max_probability:g}" for s in spec.safety
    ) or "- none"
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
    if not ctx.history:
        return "None yet: this is the first round."
    spec = ctx.spec
    readouts = [spec.objective.readout, "min_glucose", "max_glucose"] + [unsafe_readout_name(s) for s in spec.safety]
    head = "| " + " | ".join([*spec.variable_names, "status", *readouts]) + " |"
    rows = [head, "|" + "---|" * (len(spec.variable_names) + 1 + len(readouts))]
    for x, obs in ctx.history:
        vals = [v if isinstance(v := x.values[n], str) else f"{v:.4g}" for n in spec.variable_names]
        outs = [f"{obs.readouts[r]:.4g}" if r in obs.readouts else "-" for r in readouts]
        rows.append("| " + " | ".join([*vals, obs.status, *outs]) + " |")
    return "\n".join(rows)


def _hypotheses_text(ctx: ProposalContext) -> str:
    if not ctx.hypotheses:
        return "None yet."
    return "\n".join(
        f"- [{h.status}] {h.statement} (for: {len(h.evidence_for)}, against: {len(h.evidence_against)})"
        for h in ctx.hypotheses
    )
