"""`wetloop review --web`: the review page and the campaign pages, served on 127.0.0.1.

The web server is the optional `server` extra (fastapi, uvicorn, python-multipart):
`missing_packages()` says what is missing without importing anything, and `INSTALL_HINT` is the
line that installs it. The rest is imported on first use:

    create_app(campaign, token) -> FastAPI            the app (app.py); its routes are listed there
    serve_review(campaign, port=0)                     serve until Ctrl-C, the URL printed once (serve.py)
    start_server(campaign, port=0) -> RunningServer    the same in a background thread (tests, notebooks)
    ReviewDesk                                         draft decisions and the release (_desk.py)
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

__all__ = ["INSTALL_HINT", "missing_packages", "create_app", "serve_review", "start_server", "RunningServer", "ReviewDesk"]

INSTALL_HINT = 'pip install "wetloop[server]"'
_NEEDED = {"fastapi": ("fastapi",), "uvicorn": ("uvicorn",), "python-multipart": ("python_multipart", "multipart")}
_LAZY = {
    "create_app": ".app",
    "serve_review": ".serve",
    "start_server": ".serve",
    "RunningServer": ".serve",
    "ReviewDesk": "._desk",
}


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_packages() -> list[str]:
    """The distributions of the `server` extra that cannot be imported here (empty: all there)."""
    return [dist for dist, modules in _NEEDED.items() if not any(_importable(m) for m in modules)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
