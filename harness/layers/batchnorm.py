"""The batchnorm kind: batch normalisation over the channels of an image or the features of flat input."""

from __future__ import annotations

import math

from harness.layers.base import Key, Kind, Shape, ShapeError


class BatchNorm(Kind):
    """y = (x - mean) / √(var + eps) · weight + bias per channel of an image [C, H, W]
    (torch.nn.BatchNorm2d) or per feature of flat input [F] (torch.nn.BatchNorm1d): the batch's
    statistics while training, which also move the running ones by `momentum` (the variance
    unbiased there), the running statistics when evaluating. Parameters weight and bias (when
    `affine`, starting at 1 and 0); state running_mean (0), running_var (1) and num_batches_tracked."""

    name = "batchnorm"
    keys = {"eps": Key("float", 1e-5, minimum=0), "momentum": Key("float", 0.1, minimum=0, maximum=1),
            "affine": Key("bool", True)}
    activation = True

    @classmethod
    def channels(cls, in_shape: Shape) -> int:
        if len(in_shape) not in (1, 3):
            raise ShapeError(f"batchnorm takes images [channels, height, width] or flat input [features], but "
                             f"its input has shape {list(in_shape)}")
        return in_shape[0]

    @classmethod
    def out_shape(cls, s, in_shape):
        cls.channels(in_shape)
        return tuple(in_shape)

    @classmethod
    def param_shapes(cls, s, in_shape):
        c = cls.channels(in_shape)
        return {"weight": (c,), "bias": (c,)} if s.get("affine") else {}

    @classmethod
    def state_shapes(cls, s, in_shape):
        c = cls.channels(in_shape)
        return {"running_mean": (c,), "running_var": (c,), "num_batches_tracked": ()}

    @classmethod
    def initial_state(cls, s, in_shape):
        import numpy as np

        c = cls.channels(in_shape)
        return {"running_mean": np.zeros(c), "running_var": np.ones(c), "num_batches_tracked": np.zeros(())}

    @classmethod
    def initial_parameters(cls, s, in_shape, rng, draw, laws):
        import numpy as np

        return {name: (np.ones if name == "weight" else np.zeros)(shape)
                for name, shape in cls.param_shapes(s, in_shape).items()}

    @classmethod
    def flops(cls, s, in_shape):
        return 2 * math.prod(in_shape)  # a multiply and an add per value: a scale and a shift per channel
