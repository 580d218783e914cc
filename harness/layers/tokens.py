"""The tokens kind: an image's positions as a sequence, [C, H, W] -> [H·W, C]."""

from __future__ import annotations

from harness.layers.base import Kind, ShapeError


class Tokens(Kind):
    """Each pixel of an image [C, H, W] becomes a step of C features, row by row: [H·W, C], as
    torch's x.flatten(2).transpose(1, 2) after a patchifying conv2d (a vision transformer's tokens)."""

    name = "tokens"

    @classmethod
    def out_shape(cls, s, in_shape):
        if len(in_shape) != 3:
            raise ShapeError(f"tokens takes an image [channels, height, width], but its input has shape "
                             f"{list(in_shape)}; put a conv2d before it")
        c, h, w = in_shape
        return (h * w, c)
