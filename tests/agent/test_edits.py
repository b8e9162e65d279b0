"""Review edits: one parser for the CLI and the web page, for every variable kind, with errors in words."""

from __future__ import annotations

import pytest

from wetloop.agent._edits import edit_hint, edit_text, parse_edit, parse_edit_line, parse_edit_text, parse_value
from wetloop.agent.errors import ReviewError
from wetloop.campaign import CampaignSpec

from .fakes import five_kinds_spec

BASE = {"dose": 1.0, "n_doses": 2.0, "medium": "rich", "gene": "STAT1", "cocktail": {"Gata1": "oe"}}


@pytest.fixture()
def spec() -> CampaignSpec:
    return five_kinds_spec()


@pytest.mark.parametrize(
    "name, text, value",
    [
        ("dose", " 0.5 ", 0.5),
        ("dose", "1e-2", 0.01),
        ("dose", "+3", 3.0),
        ("dose", ".25", 0.25),
        ("n_doses", "3", 3.0),
        ("n_doses", "4.0", 4.0),
        ("medium", "poor", "poor"),
        ("medium", "POOR", "poor"),  # the spec's spelling, whatever the case
        ("gene", "IRF1", "IRF1"),
        ("cocktail", "Gata1:oe+Pu1:ko", {"Gata1": "oe", "Pu1": "ko"}),
        ("cocktail", "pu1:KO", {"Pu1": "ko"}),
        ("cocktail", "none", {}),
    ],
)
def test_each_kind_reads_its_form(spec, name, text, value) -> None:
    assert parse_value(spec.variable(name), text) == value


@pytest.mark.parametrize(
    "name, text, says",
    [
        ("dose", "nan", "cannot read 'nan' as a value of dose; type a number from 0.01 to 10 uM"),
        ("dose", "inf", "cannot read 'inf'"),
        ("dose", "1e999", "cannot read '1e999'"),  # matches the pattern, overflows: still refused
        ("dose", "1_000", "cannot read '1_000'"),
        ("dose", "١٢", "cannot read"),  # Arabic-Indic digits: float() would take them
        ("dose", "lots", "e.g."),
        ("n_doses", "2.5", "n_doses must be a whole number, got '2.5'; type a whole number from 1 to 6"),
        ("cocktail", "Gata1:oe+Gata1:ko", "names Gata1 twice"),
        ("cocktail", "Gata1:", "cannot read 'Gata1:' in cocktail"),
        ("cocktail", "Gata1", "item:level joined by +"),  # two levels: the level must be given
    ],
)
def test_errors_name_the_variable_and_the_form(spec, name, text, says) -> None:
    with pytest.raises(ReviewError) as exc:
        parse_value(spec.variable(name), text)
    assert says in str(exc.value)


def test_a_single_level_may_be_left_out() -> None:
    spec = CampaignSpec(
        name="s",
        question="q",
        world="w",
        objective={"readout": "y"},
        budget={"rounds": 1, "batch": 1},
        interventions=[{"name": "genes", "kind": "set", "items": ["A", "B"]}],
    )
    assert parse_value(spec.variable("genes"), "A+B") == {"A": "on", "B": "on"}


def test_an_edit_keeps_what_it_does_not_mention(spec) -> None:
    x = parse_edit_text(spec, BASE, "dose=0.5, cocktail=Pu1:ko+Fli1:oe")
    assert x.values == {**BASE, "dose": 0.5, "cocktail": {"Pu1": "ko", "Fli1": "oe"}}
    assert parse_edit(spec, BASE, {"dose": "  ", "medium": "poor"}).values == {**BASE, "medium": "poor"}  # blank keeps


@pytest.mark.parametrize(
    "text, says",
    [
        ("dose", "cannot read 'dose' in edit 'dose'; write name=value pairs separated by commas, e.g. dose="),
        ("dose=", "cannot read 'dose='"),
        ("dose=1,dose=2", "gives dose twice"),
        ("volume=3", "no variable named volume; the variables are dose, n_doses, medium, gene, cocktail"),
    ],
)
def test_one_line_edit_errors(spec, text, says) -> None:
    with pytest.raises(ReviewError) as exc:
        parse_edit_text(spec, BASE, text)
    assert says in str(exc.value)


def test_an_edit_line_carries_its_reason_after_a_semicolon(spec) -> None:
    x, reason = parse_edit_line(spec, BASE, "dose=0.5 , medium=poor;  lower dose, medium=poor as in round 1 ")
    assert x.values == {**BASE, "dose": 0.5, "medium": "poor"} and reason == "lower dose, medium=poor as in round 1"
    assert parse_edit_line(spec, BASE, "dose=0.5")[1] == "" and parse_edit_line(spec, BASE, "dose=0.5;")[1] == ""
    with pytest.raises(ReviewError, match="a reason after ';'"):
        parse_edit_line(spec, BASE, "lower the dose; dose=0.5")  # the values come first


def test_cli_edit_reason_is_recorded_and_defaults(spec) -> None:
    from wetloop.agent._cli_review import decisions_from_flags

    edits = ["1:dose=0.5; the last run was toxic", "2:dose=0.6"]
    decisions = decisions_from_flags(spec, _payload(), "person:ada", False, [], [], edits)
    assert [(d.action, d.reason) for d in decisions] == [("edit", "the last run was toxic"), ("edit", "edited in review")]


def test_limits_are_left_to_the_spec(spec) -> None:
    """The parser reads; the hard-limit check (as for any candidate) says what is out of bounds."""
    x = parse_edit_text(spec, BASE, "dose=99,medium=soup,cocktail=Gata1:oe+Pu1:ko+Fli1:ko")
    problems = " ".join(x.violations(spec))
    assert "dose = 99 uM is outside the hard limits" in problems and "'soup' is not one of the allowed choices" in problems
    assert "chooses 3 items" in problems


def test_edit_text_round_trips_every_kind(spec) -> None:
    for var in spec.interventions:
        assert parse_value(var, edit_text(BASE[var.name])) == BASE[var.name]
    assert edit_text({}) == "none"
    assert "e.g. Gata1:oe+Pu1:oe, or none" in edit_hint(spec.variable("cocktail"))
    assert edit_hint(spec.variable("medium")) == "one of rich, poor" and edit_hint(spec.variable("gene")) == "a name"


def test_the_web_desk_uses_the_same_parser(spec) -> None:
    """The web page's edit on a categorical raised an uncaught ValueError; now it is a ReviewError in words."""
    from wetloop.agent.web._desk import parse_edit as desk_parse_edit
    from wetloop.agent.web._pages import Card

    assert desk_parse_edit(spec, BASE, {"medium": "poor"}).values["medium"] == "poor"
    with pytest.raises(ReviewError, match="n_doses must be a whole number"):
        desk_parse_edit(spec, BASE, {"n_doses": "1.5"})
    card = Card(1, {"values": BASE}, None, None, None, None, None, {}, "")
    assert [card.field(n) for n in ("dose", "medium", "cocktail")] == ["1", "rich", "Gata1:oe"]


def _payload() -> dict:
    return {"selected": [{"index": i, "proposal_key": f"k{i}", "values": BASE} for i in (1, 2)]}


@pytest.mark.parametrize(
    "approve, reject, edit, says",
    [
        ([1], ["1=too risky"], [], "proposal #1 has two decisions (--approve 1 and --reject '1=too risky')"),
        ([], ["2=no"], ["2:dose=0.5"], "proposal #2 has two decisions (--reject '2=no' and --edit '2:dose=0.5')"),
        ([], [], ["1:dose=0.5", "1:dose=0.6"], "proposal #1 has two decisions"),
        ([1, 1], [], [], "proposal #1 has two decisions"),
    ],
)
def test_conflicting_cli_flags_are_an_error(spec, approve, reject, edit, says) -> None:
    from wetloop.agent._cli_review import decisions_from_flags

    with pytest.raises(ReviewError) as exc:
        decisions_from_flags(spec, _payload(), "person:ada", True, approve, reject, edit)
    assert says in str(exc.value)


def test_cli_edit_of_a_set_and_a_categorical(spec) -> None:
    from wetloop.agent._cli_review import decisions_from_flags

    decisions = decisions_from_flags(spec, _payload(), "person:ada", True, [], [], ["1:cocktail=Pu1:ko+Fli1:oe,medium=poor"])
    assert decisions[0].action == "edit" and decisions[1].action == "approve"
    assert decisions[0].edited.values == {**BASE, "cocktail": {"Pu1": "ko", "Fli1": "oe"}, "medium": "poor"}
    with pytest.raises(
        ReviewError, match="edit refused: outside the hard limits: medium = 'soup' is not one of the allowed choices"
    ):
        decisions_from_flags(spec, _payload(), "person:ada", True, [], [], ["1:medium=soup"])
    with pytest.raises(ReviewError, match="cannot read 'nan' as a value of dose"):
        decisions_from_flags(spec, _payload(), "person:ada", True, [], [], ["1:dose=nan"])


def test_a_refused_edit_names_an_upper_readout_limit(spec, monkeypatch) -> None:
    """The safety message once assumed a `below` threshold on a series; a limit may watch a readout from above."""
    from wetloop.agent import _review

    spec = spec.with_overrides(safety=[{"name": "toxicity", "readout": "dead", "above": 0.3, "max_probability": 0.1}])
    monkeypatch.setattr(_review, "predicted_p_unsafe", lambda world, xs: [{"toxicity": 0.4}])
    x = parse_edit_text(spec, BASE, "dose=2")
    assert _review.edit_problem(spec, x, world=object()) == "edit predicted unsafe: P(dead > 0.3) = 0.40 > 0.1 (toxicity)"


@pytest.mark.parametrize("text", ["basal=nan", "basal=inf", "basal=-inf", "basal=1e999", "basal=٣", "basal=0.٣"])
def test_cli_edit_of_a_non_finite_or_non_ascii_number_is_a_clear_error(text) -> None:
    """`review --edit 1:basal=nan` (or inf, 1e999, Arabic-Indic digits) once ended in a traceback."""
    from wetloop.agent._cli_review import decisions_from_flags
    from wetloop.campaign import default_spec_path, load_spec

    spec = load_spec(default_spec_path())
    payload = {"round": 2, "selected": [{"index": 1, "proposal_key": "k1", "values": {"basal": 0.5, "carb_ratio": 25.0}}]}
    with pytest.raises(
        ReviewError, match=f"cannot read '{text.split('=')[1]}' as a value of basal; type a number from 0.05 to 3 U/h"
    ):
        decisions_from_flags(spec, payload, "person:ada", False, [], [], [f"1:{text}"])


def test_a_first_round_edit_stays_in_the_start_region() -> None:
    """Round 1's proposals are confined to each variable's `start` region (no world model yet to judge
    safety); an edit in round 1 obeys the same rule, in the CLI, the web desk and the graph alike."""
    from wetloop.agent import _review
    from wetloop.agent._cli_review import decisions_from_flags
    from wetloop.agent._edits import edit_problems
    from wetloop.campaign import Intervention, default_spec_path, load_spec

    spec = load_spec(default_spec_path())  # basal: hard limits [0.05, 3], start [0.25, 0.6]
    base = {"basal": 0.5, "carb_ratio": 25.0}

    def payload(rnd: int) -> dict:
        return {"round": rnd, "selected": [{"index": 1, "proposal_key": "k1", "values": base}]}

    with pytest.raises(ReviewError) as refused:
        decisions_from_flags(spec, payload(1), "person:ada", False, [], [], ["1:basal=2"])
    assert str(refused.value) == (
        "edit refused: basal = 2 U/h is outside the start region [0.25, 0.6]; before the world model has seen any "
        "result, an experiment stays inside the spec's start region (as the planner's first-round proposals do). "
        "Nothing was submitted; review again with values inside the limits."
    )
    later = decisions_from_flags(spec, payload(2), "person:ada", False, [], [], ["1:basal=2"])  # a model exists by then
    assert later[0].edited is not None and later[0].edited.values["basal"] == 2.0
    inside = decisions_from_flags(spec, payload(1), "person:ada", False, [], [], ["1:basal=0.3"])
    assert inside[0].edited is not None and inside[0].edited.values["basal"] == 0.3
    x = Intervention(values={"basal": 2.0, "carb_ratio": 25.0})
    assert "outside the start region" in (_review.edit_problem(spec, x, world=None) or "")  # the graph and web desk
    assert edit_problems(spec, x, before_model=False) == []
    assert edit_problems(spec, Intervention(values={"basal": 5.0, "carb_ratio": 25.0}), before_model=True) == [
        "outside the hard limits: basal = 5 U/h is outside the hard limits [0.05, 3]"
    ]
