"""What the recurrent kinds share in torch: torch's own module, batch first, its output as the table says."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from harness.layers import LayerSpec


def sequence_module(cls: type[nn.RNNBase]) -> Callable[[LayerSpec, tuple[int, ...], torch.dtype], nn.Module]:
    """torch's recurrent module itself (so that its parameters keep their names, `weight_ih_l0` ...),
    batch first, returning every step's output with `return_sequences`, else the last step's."""

    class Sequence(cls):  # type: ignore[misc, valid-type]
        def __init__(self, s: LayerSpec, shape: tuple[int, ...], dtype: torch.dtype) -> None:
            extra = {"nonlinearity": s.get("activation")} if cls is nn.RNN else {}
            super().__init__(shape[1], s.get("units"), batch_first=True, dtype=dtype, **extra)
            self.return_sequences = s.get("return_sequences")

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            out, _ = super().forward(x)
            return out if self.return_sequences else out[:, -1]

    Sequence.__name__ = cls.__name__
    return Sequence
