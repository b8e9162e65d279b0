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
