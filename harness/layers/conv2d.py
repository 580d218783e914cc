"""The conv2d kind: cross-correlation of zero-padded images with a bank of filters."""

from __future__ import annotations

import math

from harness.layers.base import Key, WeightAndBias
from harness.layers.window import image, window_out


class Conv2d(WeightAndBias):
    """Cross-correlation over zero-padded images, as torch.nn.Conv2d: weight (filters, channels,
    kh, kw), bias (filters,); fans count the kernel window (fan_in = channels·kh·kw)."""

    name = "conv2d"
    keys = {"filters": Key("int"), "kernel": Key("pair"), "stride": Key("pair", 1),
            "padding": Key("pair", 0, minimum=0)}
    activation = True

    @classmethod
    def out_shape(cls, s, in_shape):
        _, h, w = image(cls.name, in_shape)
        return (s.get("filters"), *window_out(cls.name, (h, w), s.get("kernel"), s.get("stride"), s.get("padding")))

    @classmethod
    def param_shapes(cls, s, in_shape):
        c, _, _ = image(cls.name, in_shape)
        f = s.get("filters")
        return {"weight": (f, c, *s.get("kernel")), "bias": (f,)}

    @classmethod
    def fans(cls, s, in_shape):
        c, _, _ = image(cls.name, in_shape)
        window = math.prod(s.get("kernel"))
        return c * window, s.get("filters") * window

    @classmethod
    def flops(cls, s, in_shape):
        c, _, _ = image(cls.name, in_shape)
        out = cls.out_shape(s, in_shape)
        return 2 * c * math.prod(s.get("kernel")) * math.prod(out)
