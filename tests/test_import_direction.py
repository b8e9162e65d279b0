"""The rooms import one way (DESIGN.md): a backward edge fails here, naming the file and the import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "wetloop"
ROOMS = ("agent", "planners", "worldmodel", "lab_adapters", "campaign", "prompts", "worlds")
ALLOWED = {
    "worlds": {"worlds", "planners", "worldmodel", "lab_adapters", "campaign"},  # a world extends the rooms, never the agent
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
                base = list(path.relative_to(PACKAGE).parent.parts)[
                    : len(path.relative_to(PACKAGE).parent.parts) - node.level + 1
                ]
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


# -- worlds stay in their folders ---------------------------------------------------------------------
# What names a world: its registry name and the vocabulary only that world speaks. A generic room may
# not use them in code (names, attributes, string constants; docstrings and comments may give examples).
WORLD_WORDS = ("simglucose", "crispr", "glucose", "basal", "carb_ratio", "insulin", "screen", "libroadrunner", "sbml")
# Known leftovers, to be moved into their world folders; this list may only shrink (it is empty: keep it so).
LEFTOVERS: set[tuple[str, str]] = set()


def code_texts(path: Path) -> list[str]:
    """Identifiers and string constants of a file's code; a string standing alone as a statement (a
    docstring, also of an attribute) is documentation and may give examples."""
    tree = ast.parse(path.read_text(), filename=str(path))
    prose = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    texts = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            texts.append(node.id)
        elif isinstance(node, ast.Attribute):
            texts.append(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            texts.append(node.name)
        elif isinstance(node, ast.arg):
            texts.append(node.arg)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
            texts.append(node.value)
    return texts


def _code_words(path: Path) -> set[str]:
    """The WORLD_WORDS used in a file's code (identifiers and strings that are not documentation)."""
    return {w for w in WORLD_WORDS for t in code_texts(path) if w in t.lower()}


def _generic_files() -> list[Path]:
    return [p for p in _files() if p.relative_to(PACKAGE).parts[0] != "worlds" and p.name != "_worlds.py"]


@pytest.mark.parametrize("path", _generic_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_generic_rooms_do_not_name_a_world(path: Path) -> None:
    rel = str(path.relative_to(PACKAGE))
    new = sorted(w for w in _code_words(path) if (rel, w) not in LEFTOVERS)
    assert not new, f"{rel} names world vocabulary {new} in its code: move that into the world's folder (wetloop/worlds/<name>/)"


def test_a_planted_world_name_is_caught() -> None:
    fake = PACKAGE / "planners" / "_x_probe.py"
    fake.write_text('"""a docstring may say simglucose"""\nWORLD = "crispr_screen"\n\ndef pick(basal):\n    return basal\n')
    try:
        found = _code_words(fake)
    finally:
        fake.unlink()
    assert found == {"crispr", "screen", "basal"}


def test_rooms_never_import_a_world() -> None:
    for path in _generic_files():
        for line, name in _imports(path):
            assert not name.startswith("wetloop.worlds"), (
                f"{path.name}:{line} imports {name}: rooms find worlds through campaign.get_world"
            )


def test_leftovers_are_still_there() -> None:
    """A leftover that was moved out must leave the list, so the list only shrinks and stays true."""
    used = {(str(p.relative_to(PACKAGE)), w) for p in _generic_files() for w in _code_words(p)}
    gone = sorted(LEFTOVERS - used)
    assert not gone, f"no longer used, remove from LEFTOVERS: {gone}"
