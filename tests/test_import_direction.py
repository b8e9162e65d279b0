"""The rooms import one way (DESIGN.md): a backward edge fails here, naming the file and the import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "wetloop"
ROOMS = ("agent", "planners", "worldmodel", "lab_adapters", "campaign", "prompts")
ALLOWED = {
    "agent": {"agent", "planners", "worldmodel", "lab_adapters", "campaign", "prompts"},
    "planners": {"planners", "worldmodel", "campaign"},
    "worldmodel": {"worldmodel", "campaign"},
    "lab_adapters": {"lab_adapters", "campaign"},
    "campaign": {"campaign"},
    "prompts": {"prompts"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    room = path.relative_to(PACKAGE).parts[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                base = list(path.relative_to(PACKAGE).parent.parts)[: len(path.relative_to(PACKAGE).parent.parts) - node.level + 1]
                found.append((node.lineno, ".".join(["wetloop", *base, *(node.module.split(".") if node.module else [])])))
            else:
                found.append((node.lineno, node.module or ""))
    return [(line, name) for line, name in found if name] or [(0, f"wetloop.{room}")]


def _files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] in ROOMS)


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_room_imports_only_forward(path: Path) -> None:
    room = path.relative_to(PACKAGE).parts[0]
    for line, name in _imports(path):
        parts = name.split(".")
        if parts[0] == "wetloop" and len(parts) > 1 and parts[1] in ROOMS:
            assert parts[1] in ALLOWED[room], f"{path.name}:{line} imports {name}: {room} may not import {parts[1]}"
        if room in ("lab_adapters", "campaign"):
            assert parts[0] not in ("torch", "botorch", "gpytorch"), f"{path.name}:{line}: {room} must not import {parts[0]}"


def test_every_room_is_checked() -> None:
    rooms_seen = {p.relative_to(PACKAGE).parts[0] for p in _files()}
    assert rooms_seen == set(ROOMS)


def test_a_backward_edge_is_caught(tmp_path: Path) -> None:
    """The walker itself must see a planted backward import (so a silent walker cannot pass)."""
    fake = PACKAGE / "campaign" / "_x_probe.py"
    fake.write_text("from wetloop.agent import graph\nfrom ..worldmodel import TrajectoryWorldModel\n")
    try:
        names = [n for _, n in _imports(fake)]
    finally:
        fake.unlink()
    assert "wetloop.agent" in names and "wetloop.worldmodel" in names
