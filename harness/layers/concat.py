"""The concat kind: two or more outputs side by side, along channels for images, along features otherwise."""

from __future__ import annotations

from harness.layers.base import Kind, ShapeError


class Concat(Kind):
    """torch.cat of its inputs along the channels of images ([C, H, W], dim 1 of the batch) or the
    last axis of flat rows and sequences ([F], [T, F]); every other axis must agree."""

    name = "concat"
    activation = True
    merges = True

    @classmethod
    def out_shape(cls, s, in_shape):
        shapes = [tuple(x) for x in in_shape]
        axis = 0 if len(shapes[0]) == 3 else len(shapes[0]) - 1
        rest = [x[:axis] + x[axis + 1:] for x in shapes]
        if any(len(x) != len(shapes[0]) for x in shapes) or any(r != rest[0] for r in rest):
            along = "channels" if axis == 0 else "the last axis"
            raise ShapeError(f"concat joins along {along} and needs every other size equal, given "
                             f"{', '.join(str(list(x)) for x in shapes)}")
        return (*shapes[0][:axis], sum(x[axis] for x in shapes), *shapes[0][axis + 1:])

    @classmethod
    def time_axis(cls, s):
        return "each"
