"""Reading a campaign spec file: bounded, UTF-8, YAML without aliases, every problem on its own line.

A spec file is read whole before anything else happens, and refused with one line per problem, each
with the line of the file it is about: a file larger than `LIMITS["file_bytes"]`, bytes that are not
UTF-8, a YAML alias (`*name`: a few aliases of aliases expand to gigabytes, so a spec writes each value
out), a key given twice, and every field the spec's schema refuses.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ._spec import LIMITS, CampaignSpec
from .errors import SpecError

__all__ = ["SourceMap", "load_spec", "problem_lines", "validate_spec_data"]

Loc = tuple[str | int, ...]


class SourceMap:
    """The line (1-based) of each field of a YAML document, by its path (`("interventions", 0, "upper")`)."""

    def __init__(self, lines: Mapping[Loc, int]) -> None:
        self.lines = dict(lines)

    @classmethod
    def of(cls, node: yaml.Node) -> SourceMap:
        """The lines of every node under `node`; SpecError for a key given twice in one mapping."""
        lines: dict[Loc, int] = {}
        stack: list[tuple[Loc, yaml.Node, int]] = [((), node, node.start_mark.line + 1)]
        while stack:
            path, n, line = stack.pop()
            lines[path] = line  # a mapping's entry is where its key is; a list item, where it starts
            if isinstance(n, yaml.MappingNode):
                seen: dict[str, int] = {}
                for key, value in n.value:
                    name = str(key.value)
                    if name in seen:
                        where = ".".join(map(str, (*path, name)))
                        raise SpecError(
                            f"line {key.start_mark.line + 1}: {where} is given twice (first on line {seen[name]}); "
                            "keep one of them"
                        )
                    seen[name] = key.start_mark.line + 1
                    stack.append(((*path, name), value, key.start_mark.line + 1))
            elif isinstance(n, yaml.SequenceNode):
                stack.extend(((*path, i), item, item.start_mark.line + 1) for i, item in enumerate(n.value))
        return cls(lines)

    def line(self, loc: Iterable[str | int]) -> int | None:
        """The line of the longest prefix of `loc` that the file holds (None: not even the first part)."""
        parts = tuple(int(p) if isinstance(p, str) and p.isdigit() else p for p in loc)
        for n in range(len(parts), 0, -1):
            if parts[:n] in self.lines:
                return self.lines[parts[:n]]
        return None

    def locate(self, problem: str) -> str:
        """`problem` prefixed with `line N: ` when it starts with a field path the file holds
        (`world_options.hours: ...`, `interventions.0.upper: ...`)."""
        head = problem.split(":", 1)[0].split(" ", 1)[0]
        line = self.line(head.split(".")) if head and not problem.startswith("line ") else None
        return f"line {line}: {problem}" if line is not None else problem

    def without(self, fields: Iterable[str]) -> SourceMap:
        """The map less the top-level fields given (changed since the file was read: their lines no longer apply)."""
        gone = set(fields)
        return SourceMap({loc: line for loc, line in self.lines.items() if not (loc and loc[0] in gone)})


class _NoAliasLoader(yaml.SafeLoader):
    """The safe loader, refusing aliases before they are expanded."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise SpecError(
                f"line {event.start_mark.line + 1}: the YAML alias *{event.anchor} is not allowed in a spec "
                "(aliases can expand without bound); write the value out where it is used"
            )
        return super().compose_node(parent, index)


def load_spec(path: str | Path) -> CampaignSpec:
    """Read and validate a campaign spec from YAML; SpecError lists every problem, one line each,
    with the line of the file it is about (see the module docstring for what is refused)."""
    path = Path(path)
    raw, source = _read(path)
    return validate_spec_data(raw, source, f"spec file {path}")


def _read(path: Path) -> tuple[Any, SourceMap]:
    try:
        with path.open("rb") as fh:
            data = fh.read(LIMITS["file_bytes"] + 1)
    except FileNotFoundError:
        raise SpecError(f"spec file {path} does not exist; pass the path of a YAML campaign spec") from None
    except OSError as exc:
        raise SpecError(f"spec file {path} cannot be read: {exc.strerror or exc}") from None
    if len(data) > LIMITS["file_bytes"]:
        raise SpecError(f"spec file {path} is larger than {LIMITS['file_bytes']:,} bytes; a spec is a short text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SpecError(
            f"spec file {path} is not UTF-8 text: byte 0x{data[exc.start]:02x} on line {line}; save the file as UTF-8"
        ) from None
    loader = _NoAliasLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecError(f"spec file {path} is empty; write the spec's fields (name, question, world, ...)")
        source = SourceMap.of(node)
        raw = loader.construct_document(node)
    except SpecError as exc:
        raise SpecError(f"spec file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"spec file {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise SpecError(f"spec file {path} nests too deeply to be a spec") from None
    finally:
        loader.dispose()
    if not isinstance(raw, dict):
        raise SpecError(f"spec file {path} must hold a mapping of fields, got {type(raw).__name__}")
    return raw, source


def validate_spec_data(data: Any, source: SourceMap | None, label: str) -> CampaignSpec:
    """`data` as a CampaignSpec that remembers `source`; SpecError naming `label`, one line per problem."""
    try:
        spec = CampaignSpec.model_validate(data)
    except ValidationError as exc:
        lines = problem_lines(exc, data, CampaignSpec)
        located = [source.locate(p) if source is not None else p for p in lines]
        raise SpecError(f"{label} is invalid:\n  " + "\n  ".join(located), problems=located) from None
    spec._source = source
    return spec


def problem_lines(exc: ValidationError, data: Any, model: type[BaseModel], prefix: str = "") -> list[str]:
    """One line per field at fault, `path: what is wrong[; what to do]` (a field that fails several
    ways, e.g. each member of a union, gets one line with each reason)."""
    found: dict[str, list[str]] = {}
    for error in exc.errors():
        loc = _clean(error["loc"], data)
        text = _message(error, model, loc)
        if not loc and not prefix and ": " in text:  # a check across fields names the field at fault itself
            path, _, text = text.partition(": ")
        else:
            path = prefix + ".".join(map(str, loc)) if loc else (prefix.rstrip(".") or "(top)")
        if text not in found.setdefault(path, []):
            found[path].append(text)
    return [f"{path}: {' or '.join(texts)}" for path, texts in found.items()]


def _clean(loc: tuple[Any, ...], data: Any) -> Loc:
    """The error's location as it is in the data: pydantic adds the names of union members and
    validators (`float`, `function-after[...]`), which the file does not have."""
    out: list[str | int] = []
    for i, part in enumerate(loc):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list | tuple) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        elif i == len(loc) - 1 and isinstance(part, str) and isinstance(data, dict):
            pass  # a missing or unknown field: keep its name
        else:
            continue
        out.append(part)
    return tuple(out)


def _message(error: Any, model: type[BaseModel], loc: Loc) -> str:
    kind, msg, value = error["type"], str(error["msg"]), error.get("input")
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "missing":
        return "missing; add it"
    if kind == "extra_forbidden":
        fields = _fields_at(model, loc[:-1])
        return "not a field here; " + (f"the fields are: {', '.join(fields)}" if fields else "remove it")
    if isinstance(value, bool) and kind in ("float_type", "int_type"):
        return f"{str(value).lower()} is not a number; write the number itself"
    if kind == "finite_number":
        return "must be a finite number (not .inf or .nan)"
    if kind == "string_too_long":
        return f"{msg}; shorten it"
    if kind == "string_pattern_mismatch":
        return f"{value!r} is not allowed: {_pattern_words(loc)}"
    return msg


def _pattern_words(loc: Loc) -> str:
    if loc and loc[0] == "name":
        return "a campaign name is a directory name: start with a letter or digit, then letters, digits, _ . -"
    if loc and loc[-1] == "name" and len(loc) > 1 and loc[0] == "series":
        return "start with a letter or _, then letters, digits, _ and ."
    return "use lower-case letters, digits and _, starting with a letter"


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """The field names of the model found at `loc` inside `model` (empty where it is not a model)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = _model_of(current)
        if fields is None or part not in fields.model_fields:
            return []
        current = fields.model_fields[part].annotation
    found = _model_of(current)
    return sorted(found.model_fields) if found is not None else []


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (`X`, `X | None`, `tuple[X, ...]`), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (tuple, list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None
