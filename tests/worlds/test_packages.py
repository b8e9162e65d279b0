"""A world package is light to import (the registry and the CLI import every world), and every name it
exports still resolves (its heavy modules load on first use)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

LAZY = ("wetloop.worlds.simglucose", "wetloop.worlds.crispr_screen")


def test_importing_a_world_and_its_commands_loads_no_simulator_or_torch() -> None:
    probe = (
        "import sys, typer\nfrom wetloop.campaign import get_world\n"
        "for name in ('simglucose', 'crispr_screen'):\n"
        "    get_world(name).register_cli(typer.Typer(), None)\n"
        "print(sorted(m for m in ('torch', 'botorch', 'simglucose', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.parametrize("package", LAZY)
def test_every_exported_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None
    with pytest.raises(AttributeError, match="no_such_name"):
        module.no_such_name  # noqa: B018
