"""Two or more outputs side by side, as torch.cat: along channels for images, along the last axis otherwise."""

from __future__ import annotations

import numpy as np

from harness.scratch.layers.base import Layer


class Concat(Layer):
    """y = [x₁, x₂, …] along the channel axis of images (axis 1 of the batch) or the last axis of rows
    and sequences; backward gives each input its slice of dy, copied into a buffer of its own."""

    kind = "concat"

    def __init__(self, spec, in_shape, dtype) -> None:
        super().__init__(spec, in_shape, dtype)
        first = self.in_shape[0]
        self.axis = 1 if len(first) == 3 else len(first)  # in the batch's axes
        widths = [shape[self.axis - 1] for shape in self.in_shape]
        self.bounds = list(zip(np.cumsum([0, *widths[:-1]]).tolist(), np.cumsum(widths).tolist(), strict=True))

    def forward(self, xs: list[np.ndarray], training: bool = True) -> np.ndarray:
        y = self.buffer("y" if training else "y_eval", (len(xs[0]), *self._out(xs)))
        np.concatenate(xs, axis=self.axis, out=y)
        return y

    def _out(self, xs: list[np.ndarray]) -> tuple[int, ...]:
        """One sample's output shape (a time length left open is the batch's)."""
        shape = list(xs[0].shape[1:])
        shape[self.axis - 1] = self.out_shape[self.axis - 1]
        return tuple(shape)

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> list[np.ndarray] | None:
        if not need_dx:
            return None
        out = []
        for i, (start, stop) in enumerate(self.bounds):
            part = dy[(slice(None),) * self.axis + (slice(start, stop),)]
            dx = self.buffer(f"dx{i}", part.shape)
            np.copyto(dx, part)
            out.append(dx)
        return out
