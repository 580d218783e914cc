"""The scratch engine's layers, one class per kind of the layer table (`harness.layers.KINDS`)."""

from __future__ import annotations

from harness.scratch.layers.activation import ActivationLayer
from harness.scratch.layers.base import Layer
from harness.scratch.layers.dense import Dense
from harness.scratch.layers.flatten import Flatten

LAYERS: dict[str, type[Layer]] = {cls.kind: cls for cls in (Dense, Flatten)}

__all__ = ["LAYERS", "ActivationLayer", "Dense", "Flatten", "Layer"]
