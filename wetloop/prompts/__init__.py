"""Prompt templates, one Markdown file each, loaded by name and filled with `str.format` fields."""

from __future__ import annotations

from functools import cache
from importlib import resources

__all__ = ["load_prompt", "render_prompt"]


@cache
def load_prompt(name: str) -> str:
    """The raw text of prompt `name` (file `<name>.md` in this package)."""
    path = resources.files(__package__) / f"{name}.md"
    if not path.is_file():
        known = sorted(p.name[:-3] for p in resources.files(__package__).iterdir() if p.name.endswith(".md"))
        raise FileNotFoundError(f"no prompt named {name!r}; known prompts: {known}")
    return path.read_text(encoding="utf-8")


def render_prompt(name: str, **fields: object) -> str:
    """Prompt `name` with its `{field}` placeholders filled in."""
    return load_prompt(name).format(**fields)
