"""Datasets by name. Each loader returns a `Dataset` of C-contiguous arrays in the run's dtype."""

from __future__ import annotations

from harness.data import addition, binary_addition, mnist, plane, sort, xor
from harness.data.base import Dataset, DatasetInfo, load

DATASETS: dict[str, DatasetInfo] = {
    info.name: info for info in (xor.INFO, addition.INFO, binary_addition.INFO, mnist.INFO, *plane.INFOS, sort.INFO)
}

__all__ = ["DATASETS", "Dataset", "DatasetInfo", "load"]
