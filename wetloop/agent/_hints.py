"""How a next-step hint names the program: `./dev` sets WETLOOP_COMMAND, so a user of `./dev` is told
`./dev resume --dir …`, not a `wetloop` that is not on their PATH."""

from __future__ import annotations

import os

__all__ = ["command"]


def command(args: str) -> str:
    """The command line a person should type next, e.g. `command("resume --dir runs/x")`."""
    return f"{os.environ.get('WETLOOP_COMMAND') or 'wetloop'} {args}"
