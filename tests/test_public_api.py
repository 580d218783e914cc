"""The public API as users script it, held against golden files in tests/golden/.

What a user's script or shell may rely on: `harness.spec`'s exported names and the signature of
each, `harness.scratch.Network`'s constructor and public methods, and the `--help` of every
`harness` command. A refactor passes this unchanged; an intended change rewrites the golden
file in the same commit (HARNESS_UPDATE_GOLDEN=1 pytest tests/test_public_api.py) so that the
diff shows it.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
COMMANDS = ["", "check", "parity", "run", "data", "data fetch", "data info", "bench", "report", "compare", "history",
            "ui", "playground", "evaluate", "perf", "server"]


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("HARNESS_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.is_file(), f"{path} is missing: write it with HARNESS_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name} changed; if intended, rewrite it with HARNESS_UPDATE_GOLDEN=1"


def _signature(obj) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(not callable)"


def test_spec_exports():
    from harness import spec

    lines = []
    for name in sorted(spec.__all__):
        obj = getattr(spec, name)
        kind = "class" if inspect.isclass(obj) else "function" if callable(obj) else type(obj).__name__
        lines.append(f"{name}: {kind}{_signature(obj) if callable(obj) else ''}")
    _check("spec.txt", "\n".join(lines) + "\n")


def test_network_constructor_and_methods():
    from harness.scratch import Network

    lines = [f"Network{_signature(Network)}"]
    for name, member in sorted(vars(Network).items()):
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            lines.append(f"{name}: property")
        elif isinstance(member, classmethod):
            lines.append(f"{name}: classmethod{_signature(member.__func__)}")
        elif isinstance(member, staticmethod):
            lines.append(f"{name}: staticmethod{_signature(member.__func__)}")
        elif callable(member):
            lines.append(f"{name}{_signature(member)}")
    _check("network.txt", "\n".join(lines) + "\n")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.replace(" ", "_") or "harness")
def test_command_help(command, monkeypatch):
    from harness.cli import main

    monkeypatch.setenv("COLUMNS", "100")  # argparse wraps to the terminal's width
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit:
        main([*command.split(), "--help"])
    assert exit.value.code == 0
    _check(f"help/{command.replace(' ', '_') or 'harness'}.txt", out.getvalue())
