"""linear in ONNX: Gemm (W stored as torch's (out, in), transB = 1); on every step of a sequence
(N, T, F), MatMul by its Transpose and Add, as Gemm takes matrices only. Read from Gemm, or
MatMul (its bias an Add after it, which the walk fuses)."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.layers import LayerSpec
from harness.onnx.interface import Chain, Layer, Refused

OPEN_WIDTH = ("Gemm", "MatMul")  # its readers take a flat input of open width: the weight says it


def write(g: Any, i: int, layer: LayerSpec, x: str) -> str:
    if len(g.shapes[i]) == 2:  # every step of a sequence (N, T, F): Gemm takes matrices only, MatMul broadcasts
        w_t = g.node("Transpose", [g.param(f"layers.{i}.weight")], f"layers.{i}.weight_t", f"layers.{i}.transpose",
                     perm=[1, 0])
        xw = g.node("MatMul", [x, w_t], f"layers.{i}.xw", f"layers.{i}")
        return g.node("Add", [xw, g.param(f"layers.{i}.bias")], f"layers.{i}.z", f"layers.{i}.bias")
    return g.node("Gemm", [x, g.param(f"layers.{i}.weight"), g.param(f"layers.{i}.bias")], f"layers.{i}.z",
                  f"layers.{i}", transB=1)


def _linear(w: np.ndarray, b: np.ndarray | None) -> Layer:
    if w.ndim != 2:
        raise Refused(f"a weight of shape {list(w.shape)} is not a matrix")
    return Layer("linear", {"units": int(w.shape[0])}, {"weight": w, "bias": b})


def read_gemm(node: Any, a: dict[str, Any], chain: Chain) -> Layer:
    if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
        raise Refused("Gemm with transA, alpha or beta is not supported")
    w = chain.const(node, 1)
    b = chain.const(node, 2) if len(node.input) > 2 and node.input[2] else None
    return _linear(w if a.get("transB", 0) else w.T, None if b is None else b.reshape(-1))


def read_matmul(node: Any, a: dict[str, Any], chain: Chain) -> Layer:
    return _linear(chain.const(node, 1).T, None)


READERS = {"Gemm": read_gemm, "MatMul": read_matmul}
