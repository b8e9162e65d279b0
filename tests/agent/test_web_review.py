"""`wetloop review --web`, driven in a real headless Chromium (Debian's `chromium`, via Playwright).

The server runs in a thread of the test on 127.0.0.1, port 0, over a campaign on the in-process
fake lab; round 1 is approved through the API so that the page reviews round 2, which has a world
model (predicted bands, scores, the model's safety check on edits).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from typer.testing import CliRunner

from wetloop.agent import AgentSettings, Campaign
from wetloop.agent.cli import app as cli_app
from wetloop.campaign import Decision
from wetloop.lab_adapters import SimulatedLab

from .conftest import FAST_WORLD
from .fakes import toy_glucose_day

if TYPE_CHECKING:
    from wetloop.agent.web import RunningServer

CHROMIUM = os.environ.get("WETLOOP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).is_file(),
    reason=f"no Chromium at {CHROMIUM}: `apt-get install chromium` (Debian; CI does) or set WETLOOP_CHROMIUM",
)


@pytest.fixture()
def campaign(spec, tmp_path, fake_labs, quiet) -> Iterator[Campaign]:
    """A campaign with review on, stopped at the review of round 2 (round 1 approved by 'setup')."""
    with Campaign.create(
        spec, tmp_path / "run", settings=AgentSettings(review=True), lab_factory=fake_labs, world_config=FAST_WORLD, console=quiet
    ) as c:
        first = c.run()
        assert first.review is not None
        c.review(
            [Decision(proposal_key=p["proposal_key"], action="approve", by="person:setup") for p in first.review["selected"]]
        )
        yield c


@pytest.fixture()
def server(campaign: Campaign) -> Iterator[RunningServer]:
    """The review server in a thread of this test, on 127.0.0.1 and a free port."""
    pytest.importorskip("fastapi", reason='the web review needs the server extra: pip install "wetloop[server]"')
    from wetloop.agent.web import start_server

    srv = start_server(campaign, reviewer="ada")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture()
def page(server: RunningServer):
    """A Chromium page (Debian's browser, not a Playwright download), closed after the test."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="pip install playwright (the dev extra); never `playwright install`"
    )
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            pg = browser.new_page(viewport={"width": 1300, "height": 900})
            pg.set_default_timeout(30_000)
            yield pg
        finally:
            browser.close()


def _decide(page, index: int, button: str, **fields: str) -> None:
    card = page.locator(f"#p{index}")
    for name, value in fields.items():
        card.locator(f"input[name='{name}']").fill(value)
    with page.expect_navigation():  # the form posts, and the server redirects back to the page
        card.get_by_role("button", name=button, exact=True).click()


def _nothing_submitted(c: Campaign, rnd: int) -> None:
    store = c.store
    assert store.count(c.campaign_id, "decision", round=rnd) == 0
    assert store.experiments(c.campaign_id, round=rnd) == []
    assert store.count(c.campaign_id, "submission", round=rnd) == 0


@needs_chromium
def test_review_a_round_in_chromium(campaign: Campaign, server: RunningServer, page, fake_labs) -> None:
    page.goto(server.url)
    assert page.url == server.base + "/"  # the token left the address bar for a cookie
    cards = page.locator("section.card")
    assert cards.count() == 3
    first = page.locator("#p1")
    assert "Evidence for" in first.inner_text() and "information gain" in first.inner_text()
    assert first.locator(".plotly-graph-div").count() == 1 and page.evaluate("typeof Plotly") == "object"
    assert page.locator("#removed").is_visible()
    removed = campaign.pending_review()["removed"]  # the page lists exactly what the safety filter removed
    assert f"Removed by the safety filter ({len(removed)})" in page.locator("#removed").inner_text()
    rows = page.locator("#removed tr").count()
    assert rows == len(removed) + 1 if removed else "No candidate was removed" in page.locator("#removed").inner_text()

    _decide(page, 1, "Approve")
    _decide(page, 2, "Reject")
    assert "needs a reason" in page.locator("#p2 .error").inner_text()
    _decide(page, 2, "Reject", reason_reject="too close to the best safe day")
    _decide(page, 3, "Save edit", v_basal="99")
    error = page.locator("#p3 .error").inner_text()
    assert "outside the hard limits" in error and "basal = 99" in error and "Nothing was submitted" in error
    with page.expect_navigation():  # refused: #3 still holds a refused edit
        page.locator("#release").click()
    assert "refused decision" in page.locator("#release-error").inner_text()
    _nothing_submitted(campaign, 2)

    _decide(page, 3, "Save edit", v_basal="0.3", v_carb_ratio="30", reason_edit="gentler basal")
    assert [page.locator(f"#p{i}").get_attribute("data-decision") for i in (1, 2, 3)] == ["approve", "reject", "edit"]
    page.locator("#reviewer").fill("grace")
    with page.expect_navigation():
        page.locator("#release").click()
    page.wait_for_selector("#status[data-state='review'][data-round='3']", timeout=60_000)
    assert page.locator("section.card").count() == 3

    _audit_store(campaign, fake_labs)
    again = page.request.post(server.base + "/rounds/2/release", form={"csrf": _csrf(page), "reviewer": "grace"})
    assert again.status == 409 and "already released" in again.text()
    assert len(campaign.store.experiments(campaign.campaign_id, round=2)) == 2  # still: nothing ran twice

    page.goto(server.base + "/campaign/rounds/2")
    text = page.inner_text("main")
    assert "too close to the best safe day" in text and "person:grace" in text
    page.goto(server.base + "/campaign")
    assert page.locator("table.rounds tr").count() >= 3 and page.locator("table.hypotheses").is_visible()
    assert page.locator(".plotly-graph-div").count() == 2  # objective per round; predicted vs observed


def _csrf(page) -> str:
    return page.locator("#release-form input[name='csrf']").get_attribute("value")


def _audit_store(c: Campaign, fake_labs) -> None:
    store, cid = c.store, c.campaign_id
    decisions = store.decisions(cid, round=2)
    assert [(d.action, d.by) for d in decisions] == [
        ("approve", "person:grace"),
        ("reject", "person:grace"),
        ("edit", "person:grace"),
    ]
    assert decisions[1].reason == "too close to the best safe day" and decisions[2].reason == "gentler basal"
    exps = store.experiments(cid, round=2)
    assert len(exps) == 2 and {"basal": 0.3, "carb_ratio": 30.0} in [e.intervention.values for e in exps]
    assert all(e.approved_by == "person:grace" for e in exps)
    assert {e.key for e in exps} <= set(store.submissions(cid))
    runs = fake_labs.made[-1].runs
    assert all(runs[e.key] == 1 for e in exps)  # each experiment reached the lab once


def test_every_route_wants_the_token(server: RunningServer, campaign: Campaign) -> None:
    with httpx.Client(base_url=server.base, follow_redirects=False, timeout=30) as client:
        for path in ("/", "/status", "/campaign", "/campaign/rounds/1", "/static/plotly.min.js", "/static/style.css"):
            assert client.get(path).status_code == 401, path
        assert client.get("/?token=not-the-token").status_code == 401
        assert client.get("/status", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert client.post("/rounds/2/release", data={"reviewer": "mallory"}).status_code == 401
        login = client.get("/", params={"token": server.token})
        assert login.status_code == 303 and "token" not in login.headers["location"]
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert client.get("/status").json()["state"] == "review"
        forged = client.post("/rounds/2/release", data={"reviewer": "mallory", "approve_rest": "on", "csrf": "guess"})
        assert forged.status_code == 403
    _nothing_submitted(campaign, 2)
    with httpx.Client(base_url=server.base, headers={"Host": "evil.example"}) as client:
        assert client.get("/status", headers={"Authorization": f"Bearer {server.token}"}).status_code == 400


def test_review_web_without_the_server_extra_says_how_to_install(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)
    result = CliRunner().invoke(cli_app, ["review", "--web", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert 'pip install "wetloop[server]"' in result.output


def test_desk_rules_approve_the_rest_one_release_and_a_stopped_loop(campaign: Campaign, quiet) -> None:
    pytest.importorskip("fastapi", reason='the web review needs the server extra: pip install "wetloop[server]"')
    from wetloop.agent import ReviewError
    from wetloop.agent.web import ReviewDesk
    from wetloop.agent.web._desk import ReleaseConflict

    desk = ReviewDesk(campaign, "ada")
    try:
        assert desk.status().state == "review" and desk.status().round == 2
        with pytest.raises(ReviewError, match="proposal #1 has no decision"):
            desk.release(2, "ada")
        assert "needs a reason" in (desk.decide(2, 2, "reject", {"reject": "  "}) or "")
        assert desk.decide(2, 2, "reject", {"reject": "seen enough of this region"}) is None
        with pytest.raises(ReviewError, match="type your name"):
            desk.release(2, "  ", approve_rest=True)
        decisions = desk.release(2, "ada", approve_rest=True)
        assert [d.action for d in decisions] == ["approve", "reject", "approve"]
        with pytest.raises(ReleaseConflict, match="already released"):
            desk.release(2, "ada", approve_rest=True)
        assert desk.wait(60) and desk.status().state == "review" and desk.status().round == 3
        stored = campaign.store.decisions(campaign.campaign_id, round=2)
        assert [(d.action, d.by, d.reason) for d in stored][1] == ("reject", "person:ada", "seen enough of this region")
    finally:
        desk.wait(60)  # a release thread still running when an assertion fails ends before the store closes
        desk.close()
    _a_failed_release_can_be_retried(campaign, quiet)
    _a_failing_loop_stops_and_says_how_to_resume(campaign, quiet)


class _Unreachable(Campaign):
    """A campaign whose review call fails before the loop moves (it still awaits the review)."""

    def review(self, decisions):
        raise RuntimeError("review service unreachable")


def _a_failed_release_can_be_retried(campaign: Campaign, quiet) -> None:
    from wetloop.agent.web import ReviewDesk

    with _Unreachable(campaign.run_dir, console=quiet) as broken:
        desk = ReviewDesk(broken, "ada")
        try:
            desk.release(3, "ada", approve_rest=True)
            assert desk.wait(60)
            status = desk.status()
            assert status.state == "review" and status.round == 3 and "review service unreachable" in status.error
            assert 3 not in status.released  # so the reviewer can release it again
        finally:
            desk.wait(60)
            desk.close()


class _LabGone(SimulatedLab):
    def _start(self, experiment):
        raise RuntimeError("lab unreachable")


def _a_failing_loop_stops_and_says_how_to_resume(campaign: Campaign, quiet) -> None:
    from wetloop.agent.web import ReviewDesk

    gone = lambda spec, run_dir: _LabGone(spec, lambda x: toy_glucose_day(spec, x))  # noqa: E731
    with Campaign(campaign.run_dir, console=quiet, lab_factory=gone, world_config=FAST_WORLD) as broken:
        desk = ReviewDesk(broken, "ada")
        try:
            desk.release(3, "ada", approve_rest=True)
            assert desk.wait(60)
            status = desk.status()
            assert status.state == "stopped" and "lab unreachable" in status.message and "wetloop resume" in status.message
        finally:
            desk.wait(60)
            desk.close()


def test_review_web_refuses_decision_flags(tmp_path) -> None:
    from wetloop.agent import ReviewError

    result = CliRunner().invoke(cli_app, ["review", "--web", "--approve-all", "--dir", str(tmp_path)])
    assert isinstance(result.exception, ReviewError) and "decisions on the page" in str(result.exception)


@needs_chromium
def test_a_reason_belongs_to_its_action_and_an_edit_is_predicted_anew(campaign: Campaign, server: RunningServer, page) -> None:
    page.goto(server.url)
    payload = campaign.pending_review()
    _decide(page, 1, "Save edit", v_basal="99", reason_edit="gentler basal after a low day")
    assert "outside the hard limits" in page.locator("#p1 .error").inner_text()
    assert page.locator("#p1 input[name='reason_edit']").input_value() == "gentler basal after a low day"
    _decide(page, 1, "Approve")  # the fields still hold the refused edit and its reason
    error = page.locator("#p1 .error").inner_text()
    assert "reason box of Save edit holds 'gentler basal after a low day'" in error and "Nothing was decided" in error
    assert page.locator("#p1").get_attribute("data-decision") == ""
    _decide(page, 1, "Undo")
    assert page.locator("#p1 input[name='reason_edit']").input_value() == ""
    _decide(page, 1, "Approve")
    assert page.locator("#p1").get_attribute("data-decision") == "approve"

    _decide(page, 2, "Reject", v_carb_ratio="25", reason_reject="too close to #1")
    assert "you pressed Reject, but the values are edited (carb_ratio = 25)" in page.locator("#p2 .error").inner_text()
    _decide(page, 2, "Undo")
    _decide(page, 2, "Reject", reason_reject="too close to #1")
    assert page.locator("#p2").get_attribute("data-decision") == "reject"

    _decide(page, 3, "Save edit", v_basal="0.3", v_carb_ratio="30", reason_edit="gentler basal")
    edit = server.desk.pending()[1].decisions[3]
    assert edit.predicted is not None and edit.predicted.band is not None and edit.model_version
    proposed = payload["selected"][2]["score"]
    assert edit.predicted.score.expected_value != proposed["expected_value"]
    assert f"re-predicted by world model {edit.model_version}" in page.locator("#p3-edited").inner_text()
    score = page.locator("#p3-score").inner_text()
    assert f"{edit.predicted.score.expected_value:.3g} ± {edit.predicted.score.value_std:.3g}" in score
    traces = page.evaluate("Array.from(document.querySelector('#p3 .plotly-graph-div').data, t => t.y)")
    assert any(y == pytest.approx(list(edit.predicted.band.median)) for y in traces)  # the edit's band is drawn

    with page.expect_navigation():
        page.locator("#release").click()
    page.wait_for_selector("#status[data-state='review'][data-round='3']", timeout=60_000)
    stored = campaign.store.decisions(campaign.campaign_id, round=2)
    assert [(d.action, d.reason) for d in stored] == [("approve", ""), ("reject", "too close to #1"), ("edit", "gentler basal")]


def test_two_actions_in_one_submit_are_refused(server: RunningServer, campaign: Campaign) -> None:
    from wetloop.agent.web._http import csrf_of

    auth = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.base, headers=auth, follow_redirects=False, timeout=30) as client:
        both = client.post("/rounds/2/proposals/1", data={"csrf": csrf_of(server.token), "action": ["approve", "reject"]})
        assert both.status_code == 422 and "One action per submit" in both.text
        assert server.desk.pending()[1].decisions == {}
    _nothing_submitted(campaign, 2)


def test_an_edit_to_another_candidate_gets_that_candidates_prediction(campaign: Campaign) -> None:
    """The edit is scored as the planner scored the round: an edit to the values of another selected
    candidate gets that candidate's own expected value, P(unsafe) and band."""
    pytest.importorskip("fastapi", reason='the web review needs the server extra: pip install "wetloop[server]"')
    from wetloop.agent.web import ReviewDesk

    desk = ReviewDesk(campaign, "ada")
    try:
        payload, _ = desk.pending()
        other = campaign.store.rankings(campaign.campaign_id)[-1].selected[1]
        exact = {k: repr(v) for k, v in other.proposal.intervention.values.items()}  # repr: the same floats
        assert desk.decide(2, 1, "edit", {"edit": "as #2"}, exact) is None
        predicted = desk.pending()[1].decisions[1].predicted
        assert predicted is not None and predicted.proposal.intervention.key() == other.proposal.intervention.key()
        assert predicted.score.expected_value == pytest.approx(other.score.expected_value, rel=1e-6)
        assert predicted.score.p_unsafe == pytest.approx(other.score.p_unsafe, abs=1e-9)
        assert predicted.band is not None and other.band is not None
        assert list(predicted.band.median) == pytest.approx(list(other.band.median), rel=1e-6)
        assert payload["selected"][0]["proposal_key"] != other.proposal.intervention.key()
    finally:
        desk.close()


class _Gated(SimulatedLab):
    """A lab that hands back results only as the test allows, so the page can be watched mid-round."""

    allowed = 3  # round 1's results

    def _poll(self, ticket):
        given = getattr(self, "_given", set())
        self._given = given
        obs = super()._poll(ticket)
        if obs is None or (ticket.experiment_key not in given and len(given) >= type(self).allowed):
            return None
        given.add(ticket.experiment_key)
        return obs


@needs_chromium
def test_the_running_page_counts_days_done(campaign: Campaign, page, quiet) -> None:
    pytest.importorskip("fastapi", reason='the web review needs the server extra: pip install "wetloop[server]"')
    from wetloop.agent.web import start_server

    gated = lambda spec, run_dir: _Gated(spec, lambda x: toy_glucose_day(spec, x))  # noqa: E731
    with Campaign(campaign.run_dir, console=quiet, lab_factory=gated, world_config=FAST_WORLD) as c:
        srv = start_server(c, reviewer="ada")
        try:
            _Gated.allowed = 0  # a fresh lab: count from nothing
            srv.desk.release(2, "ada", approve_rest=True)
            page.goto(srv.url)
            assert page.locator("#progress-round").inner_text() == "0 of 3 days"  # from the release on
            assert page.locator("#progress-total").inner_text() == "3 of 9 days"
            _Gated.allowed = 1
            page.wait_for_selector("#progress-round:text('1 of 3 days')", timeout=30_000)  # the page polls itself
            assert page.locator("#progress-total").inner_text() == "4 of 9 days"
            assert httpx.get(srv.base + "/status", headers={"Authorization": f"Bearer {srv.token}"}).json()["progress"] == {
                "noun": "days",
                "round_done": 1,
                "round_total": 3,
                "done": 4,
                "total": 9,
            }
            _Gated.allowed = 3
            page.wait_for_selector("#status[data-state='review'][data-round='3']", timeout=60_000)
        finally:
            _Gated.allowed = 1_000_000
            srv.stop()


def test_draft_decisions_survive_a_server_restart(campaign: Campaign) -> None:
    """Drafts once lived only in the server's memory: a restart before release lost them."""
    pytest.importorskip("fastapi", reason='the web review needs the server extra: pip install "wetloop[server]"')
    from wetloop.agent.web import ReviewDesk

    desk = ReviewDesk(campaign, "ada")
    try:
        assert desk.decide(2, 2, "reject", {"reject": "seen enough of this region"}) is None
        assert desk.decide(2, 1, "approve") is None
        assert "needs a reason" in (desk.decide(2, 3, "reject", {"reject": " "}) or "")
    finally:
        desk.close()
    again = ReviewDesk(campaign, "ada")  # a new server on the same run folder
    try:
        _, draft = again.pending()
        assert draft is not None and draft.round == 2
        assert {i: (d.action, d.reason) for i, d in draft.decisions.items()} == {
            1: ("approve", ""),
            2: ("reject", "seen enough of this region"),
        }
        assert 3 in draft.errors
        assert again.decide(2, 1, "undo") is None and again.decide(2, 3, "undo") is None
        decisions = again.release(2, "ada", approve_rest=True)
        assert [d.action for d in decisions] == ["approve", "reject", "approve"]
        assert again.wait(60)
    finally:
        again.wait(60)
        again.close()
    assert not (campaign.run_dir / "review-draft.json").exists()  # released: the draft is gone
    third = ReviewDesk(campaign, "ada")  # round 3 starts with an empty draft
    try:
        _, draft = third.pending()
        assert draft is not None and draft.round == 3 and not draft.decisions
    finally:
        third.close()
