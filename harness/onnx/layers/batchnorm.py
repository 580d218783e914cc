"""batchnorm in ONNX: BatchNormalization in inference mode (training_mode 0) with the running
statistics; without `affine`, a scale of ones and a bias of zeros. num_batches_tracked, which
inference never reads, rides in the node's metadata_props so that a file read back keeps it.
Read from BatchNormalization over the channels of an image or the features of flat input.

ONNX keeps epsilon and momentum (1 - torch's) as float32 attributes: the reader takes the shortest
decimal that float32 value stands for (1e-3, not 0.0010000000474974513), and onnxruntime
normalises with the float32 epsilon, a float64 difference of about 1e-11 for an eps like 1e-3
that float32 does not hold exactly (none for the default, 1e-5, past 1e-13)."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.layers import LayerSpec
from harness.onnx.interface import Chain, Layer, Refused

TRACKED = "num_batches_tracked"


def write(g: Any, i: int, layer: LayerSpec, x: str) -> str:
    mean = g.tensors[f"layers.{i}.running_mean"]
    if layer.get("affine"):
        scale, bias = g.param(f"layers.{i}.weight"), g.param(f"layers.{i}.bias")
    else:
        scale = g.tensor(f"layers.{i}.ones", np.ones_like(mean))
        bias = g.tensor(f"layers.{i}.zeros", np.zeros_like(mean))
    out = g.node("BatchNormalization", [x, scale, bias, g.param(f"layers.{i}.running_mean"),
                                        g.param(f"layers.{i}.running_var")], f"layers.{i}.z", f"layers.{i}",
                 epsilon=layer.get("eps"), momentum=1 - layer.get("momentum"), training_mode=0)
    entry = g.nodes[-1].metadata_props.add()
    entry.key, entry.value = TRACKED, str(int(g.tensors[f"layers.{i}.{TRACKED}"]))
    return out


def read(node: Any, a: dict[str, Any], chain: Chain) -> Layer:
    if a.get("training_mode", 0):
        raise Refused("training_mode = 1 (batch statistics at inference) is not supported")
    if len(chain.shape) not in (1, 3):
        raise Refused(f"it normalises an input of shape {list(chain.shape)}; only images [channels, height, "
                      "width] and flat input [features] are supported")
    scale, bias, mean, var = (chain.const(node, j).reshape(-1) for j in range(1, 5))
    tracked = next((e.value for e in node.metadata_props if e.key == TRACKED), "0")
    # a learned scale is named as one (ours and torch's `*.weight`); ones and zeros otherwise are no affine map
    affine = node.input[1].endswith("weight") or not (np.all(scale == 1) and np.all(bias == 0))
    momentum = _short(1 - _short(a.get("momentum", 0.9)))
    settings = {"eps": _short(a.get("epsilon", 1e-5)), "momentum": momentum if 0 < momentum <= 1 else 0.1,
                "affine": bool(affine)}
    params = {"weight": scale, "bias": bias} if affine else {}
    count = np.array(int(tracked) if tracked.isdigit() else 0, dtype=mean.dtype)
    return Layer("batchnorm", settings, {**params, "running_mean": mean, "running_var": var, TRACKED: count},
                 channel_axis=0)


def _short(value: float) -> float:
    """The shortest decimal that a float32 attribute's value stands for."""
    return float(str(np.float32(value)))


READERS = {"BatchNormalization": read}
