"""What the 2-D window kinds share (conv2d, maxpool2d, avgpool2d): image input, the output size of
a window sliding over it, and pooling's kind."""

from __future__ import annotations

import math

from harness.layers.base import Key, Kind, Shape, ShapeError


def image(kind: str, in_shape: Shape) -> tuple[int, int, int]:
    """(channels, height, width) of an image input, or a ShapeError saying what the kind takes."""
    if len(in_shape) != 3:
        raise ShapeError(f"{kind} takes images [channels, height, width], but its input has shape "
                         f"{list(in_shape)}" + ("; a convolution needs input_shape = [channels, height, width]"
                                                if len(in_shape) == 1 else ""))
    return in_shape  # type: ignore[return-value]


def window_out(kind: str, size: tuple[int, int], kernel, stride, padding) -> tuple[int, int]:
    """The output size of a 2-D window sliding over `size`; a ShapeError if it is empty."""
    out = tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip(size, kernel, stride, padding, strict=True))
    if min(out) < 1:
        raise ShapeError(f"{kind} with kernel {list(kernel)}, stride {list(stride)} and padding {list(padding)} "
                         f"on a {size[0]}x{size[1]} input leaves an empty output {out[0]}x{out[1]}")
    return out  # type: ignore[return-value]


class Pool2d(Kind):
    """A 2-D pooling window (kernel, stride, padding) over each channel; no parameters."""

    keys = {"kernel": Key("pair"), "stride": Key("pair", same_as="kernel"), "padding": Key("pair", 0, minimum=0)}

    @classmethod
    def out_shape(cls, s, in_shape):
        c, h, w = image(cls.name, in_shape)
        kernel, padding = s.get("kernel"), s.get("padding")
        if any(2 * p > k for p, k in zip(padding, kernel, strict=True)):
            raise ShapeError(f"{cls.name} padding {list(padding)} is more than half its kernel {list(kernel)} "
                             "(torch refuses it: a window could hold only padding)")
        return (c, *window_out(cls.name, (h, w), kernel, s.get("stride"), padding))

    @classmethod
    def flops(cls, s, in_shape):
        return math.prod(cls.out_shape(s, in_shape)) * math.prod(s.get("kernel"))
