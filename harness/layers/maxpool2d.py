"""The maxpool2d kind: the largest value of each window."""

from __future__ import annotations

from harness.layers.window import Pool2d


class MaxPool2d(Pool2d):
    """The largest value of each window (padding never wins), as torch.nn.MaxPool2d."""

    name = "maxpool2d"
