"""The review web app: FastAPI with server-rendered jinja2 templates, no front-end build step.

    GET  /                                  the round awaiting review (or: running, finished)
    POST /rounds/{round}/proposals/{index}  a draft decision: approve, reject (reason), edit, undo
    POST /rounds/{round}/release            release the round: the campaign continues in a thread
    GET  /status                            JSON: state (review|running|finished|stopped), round, progress
    GET  /campaign                          rounds, objective, hypotheses, predicted vs observed
    GET  /campaign/rounds/{n}               one round: ranking, decisions, experiments, surprises
    GET  /static/plotly.min.js, /static/style.css

Every route checks the token (see `_http`); nothing is recorded before a release, and a release
records the decisions through `Campaign.review`, the same call the terminal review makes.
"""

from __future__ import annotations

import functools
import getpass
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware

from ..errors import ReviewError
from ._desk import REASONED, ReleaseConflict, ReviewDesk
from ._http import TEMPLATE_DIR, csrf_of, guard, message, read_form, render, templates
from ._pages import Pages

if TYPE_CHECKING:
    from ..runner import Campaign

__all__ = ["create_app", "close_app"]

router = APIRouter()
_STATIC_CACHE = {"Cache-Control": "private, max-age=86400"}


def create_app(campaign: Campaign, token: str, *, reviewer: str | None = None, desk: ReviewDesk | None = None) -> FastAPI:
    """The review app of one campaign, guarded by `token`; `reviewer` is the name the page offers
    (default: the OS user). The app's desk (`app.state.desk`) holds the review state."""
    desk = desk or ReviewDesk(campaign, reviewer or getpass.getuser())
    app = FastAPI(title="wetloop review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.desk, app.state.pages = desk, Pages(campaign.store.path, campaign.campaign_id, campaign.spec)
    app.state.token, app.state.csrf, app.state.templates = token, csrf_of(token), templates()
    app.middleware("http")(guard)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost"])
    app.include_router(router)
    return app


def close_app(app: FastAPI) -> None:
    """Close the app's store connections (after the server stopped and a release finished)."""
    app.state.desk.close()
    app.state.pages.close()


def _desk(request: Request) -> ReviewDesk:
    return request.app.state.desk


def _review_page(request: Request, status: int = 200, release_error: str | None = None) -> HTMLResponse:
    desk = _desk(request)
    payload, draft = desk.pending()
    if payload is None or draft is None:
        return render(request, "idle.html", status, rows=request.app.state.pages.rows(), progress=desk.progress())
    context = request.app.state.pages.review(payload, draft)
    return render(request, "review.html", status, plots=True, reviewer=desk.reviewer, release_error=release_error, **context)


@router.get("/", response_class=HTMLResponse)
def review_page(request: Request) -> HTMLResponse:
    """The round awaiting review; while a released round runs, a page that refreshes itself."""
    return _review_page(request)


@router.post("/rounds/{round}/proposals/{index}")
async def decide(request: Request, round: int, index: int) -> Response:
    """One draft decision; a refused edit, a rejection without reason, or a submit that holds two
    actions (see `_desk`) shows next to the proposal."""
    form = await read_form(request)
    actions = (await request.form()).getlist("action")
    if len(actions) != 1:
        return message(
            request, 422, "One action per submit", f"this form sent {len(actions)} actions; press one button of the proposal"
        )
    action = form["action"]
    if action == "enter":  # Enter pressed in a field: decide nothing rather than approve by accident
        return RedirectResponse(f"/#p{index}", status_code=303)
    typed = {k[2:]: v for k, v in form.items() if k.startswith("v_")}
    reasons: dict[str, str] = {a: form.get(f"reason_{a}", "") for a in REASONED}
    try:
        await run_in_threadpool(_desk(request).decide, round, index, action, reasons, typed)
    except ReleaseConflict as exc:
        return message(request, 409, f"Round {round} is not awaiting review", str(exc))
    except ReviewError as exc:
        return message(request, 404, "No such proposal", str(exc))
    return RedirectResponse(f"/#p{index}", status_code=303)


@router.post("/rounds/{round}/release")
async def release(request: Request, round: int) -> Response:
    """Release the round (once): the decisions go to the campaign, which runs on in a thread."""
    form = await read_form(request)
    desk = _desk(request)
    try:
        await run_in_threadpool(desk.release, round, form.get("reviewer", ""), form.get("approve_rest") == "on")
    except ReleaseConflict as exc:
        return message(request, 409, f"Round {round} was not released again", str(exc))
    except ReviewError as exc:
        return await run_in_threadpool(_review_page, request, 422, str(exc))
    desk.reviewer = form.get("reviewer", desk.reviewer).strip() or desk.reviewer
    return RedirectResponse("/", status_code=303)


@router.get("/status")
def status(request: Request) -> dict[str, Any]:
    """Where the campaign stands, for scripts and tests: state, round, message, released rounds."""
    desk = _desk(request)
    s, progress = desk.status(), desk.progress()
    return {"state": s.state, "round": s.round, "message": s.message, "released": s.released, "progress": asdict(progress)}


@router.get("/campaign", response_class=HTMLResponse)
def campaign_page(request: Request) -> HTMLResponse:
    return render(request, "campaign.html", plots=True, **request.app.state.pages.campaign())


@router.get("/campaign/rounds/{n}", response_class=HTMLResponse)
def round_page(request: Request, n: int) -> HTMLResponse:
    context = request.app.state.pages.round(n)
    if n not in context["view"].rounds:
        return message(request, 404, f"No round {n}", f"the campaign has rounds {context['view'].rounds or 'none yet'}")
    return render(request, "round.html", plots=True, **context)


@functools.cache
def _plotly_js() -> bytes:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().encode()


@router.get("/static/plotly.min.js")
def plotly_js() -> Response:
    """plotly.js from the installed plotly package: the pages work with no network."""
    return Response(_plotly_js(), media_type="text/javascript", headers=_STATIC_CACHE)


@router.get("/static/style.css")
def style() -> Response:
    return Response((TEMPLATE_DIR / "style.css").read_bytes(), media_type="text/css", headers=_STATIC_CACHE)
