"""The app's plumbing: the token guard, the form check, and template rendering.

The token comes once in the URL (`?token=`), is swapped for an HttpOnly SameSite=Strict cookie
and dropped from the address; scripts may send `Authorization: Bearer <token>` instead. Forms
carry a field derived from the token (`csrf`), so a cross-site post fails twice: the browser sends
no SameSite=Strict cookie with it, and the page that posts cannot know the field.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from .._edits import edit_hint
from ._desk import ReviewDesk

__all__ = ["COOKIE", "TEMPLATE_DIR", "csrf_of", "templates", "guard", "render", "message", "read_form"]

COOKIE = "wetloop_review"
TEMPLATE_DIR = Path(__file__).parent.parent / "templates" / "web"


def csrf_of(token: str) -> str:
    """The value every form must post back: derived from the token, useless without it."""
    return hmac.new(token.encode(), b"wetloop-review-form", hashlib.sha256).hexdigest()


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def templates() -> Jinja2Templates:
    """The page templates (`templates/web/`), autoescaped, with `num`, `pct` and `edit_hint` (the expected form of an edit) filters."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters.update(num=_num, pct=lambda v: "—" if v is None else f"{100 * v:.0f}%", edit_hint=edit_hint)
    return Jinja2Templates(env=env)


def _same(given: str, token: str) -> bool:
    return secrets.compare_digest(given.encode(), token.encode())


def _authorised(request: Request, token: str) -> bool:
    header = request.headers.get("authorization", "")
    given = request.cookies.get(COOKIE) or (header[7:] if header.lower().startswith("bearer ") else "")
    return _same(given, token)


async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Middleware: a right `?token=` on a GET sets the cookie and redirects to the address without
    it; a wrong one, or no valid cookie or header, gets 401. Every route passes through here."""
    token: str = request.app.state.token
    given = request.query_params.get("token")
    if given is not None and _same(given, token) and request.method == "GET":
        response: Response = RedirectResponse(str(request.url.remove_query_params("token")), status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
    elif given is not None or not _authorised(request, token):
        return HTMLResponse(_UNAUTHORISED, status_code=401, headers={"WWW-Authenticate": "Bearer"})
    else:
        response = await call_next(request)
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.update({"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"})
    return response


_UNAUTHORISED = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>401 · wetloop review</title></head>
<body style="font: 15px system-ui, sans-serif; margin: 3em"><h1>401: not authorised</h1>
<p>This review page needs its token. Open the URL that <code>wetloop review --web</code> printed
(it ends in <code>?token=…</code>); it sets a cookie for this browser. Lost it? Stop the server and start it again.</p>
</body></html>"""


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render template `name` with what every page shows (status, campaign, csrf) and `context`."""
    state = request.app.state
    desk: ReviewDesk = state.desk
    base = {
        "status": desk.status(),
        "spec": desk.spec,
        "campaign_id": desk.campaign.campaign_id,
        "run_dir": desk.campaign.run_dir,
        "csrf": state.csrf,
        "plots": False,
    }
    return state.templates.TemplateResponse(request, name, {**base, **context}, status_code=status)


def message(request: Request, status: int, title: str, text: str) -> HTMLResponse:
    """A page that says what happened and what to do (conflicts, unknown rounds)."""
    return render(request, "message.html", status, title=title, text=text)


async def read_form(request: Request) -> dict[str, str]:
    """The posted form as plain strings, after checking its csrf field (403 when it is wrong)."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    if not secrets.compare_digest(form.get("csrf", "").encode(), request.app.state.csrf.encode()):
        raise HTTPException(403, "this form did not come from the review page; reload the page and try again")
    return form
