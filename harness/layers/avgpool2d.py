"""The avgpool2d kind: the mean of each window."""

from __future__ import annotations

from harness.layers.window import Pool2d


class AvgPool2d(Pool2d):
    """The mean of each window, padding counted as zeros (torch's count_include_pad=True)."""

    name = "avgpool2d"
