"""The ONNX package's boundaries: engine-neutral, and a graph walk that names no layer kind."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from harness import onnx
from harness.layers import KINDS

PACKAGE = Path(onnx.__file__).parent


def test_the_onnx_package_imports_no_engine():
    code = ("import sys, harness.onnx, harness.onnx.runtime; "
            "print(sorted(m for m in sys.modules if m.startswith(('harness.scratch', 'harness.reference', 'torch'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_the_walk_names_no_layer_kind_and_no_op_of_a_kind():
    names = set(KINDS) | set(onnx.READERS)
    for module in ("walk.py", "fusions.py", "read.py"):
        tree = ast.parse((PACKAGE / module).read_text())
        strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        named = strings & names
        if module == "read.py":  # a harness network ends in its linear output layer: the spec's `outputs`
            named -= {"linear"}
        assert not named, f"{module} names {sorted(named)}"


def test_every_kind_has_its_module_with_its_writer_and_its_readers():
    for kind in KINDS:
        assert (PACKAGE / "layers" / f"{kind}.py").is_file(), kind
        assert onnx.WRITERS[kind].__module__ == f"harness.onnx.layers.{kind}", kind
    for op, (kind, read) in onnx.READERS.items():
        assert read.__module__ == f"harness.onnx.layers.{kind}", op
