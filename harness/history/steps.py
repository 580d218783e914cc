"""Steps in a figure's history: where, from one commit to the next, the figure moved and stayed moved.

The method is airspeed velocity's step detection (asv's `step_detect`, after Friedrich et al. 2008,
"Complexity penalized M-estimation"), written anew here: the per-commit medians y_1..y_n are fitted
by a piecewise constant function x that minimises the Potts functional

    F(x) = gamma * (number of segments) + sum_i w_i |y_i - x_i|,

an L1 fit, so one stray commit moves no level much; each segment's level is its weighted median.
For a given gamma the minimum is exact, by dynamic programming over the segments' right ends
(`potts`). gamma is chosen as asv chooses it, by an information criterion over a log-spaced range
of gammas: beta * segments + log(sigma_0 + residual), beta = 4 ln(n) / n (a Schwarz criterion with
four degrees of freedom per step), sigma_0 a floor under the residual (a tenth of the smallest jump
between levels, or a thousandth of the smallest level with fewer than three segments). asv's
refinement for correlated noise is left out: each commit's figure here is already a median over
fresh processes. A commit's weight is its median over the width of its 95% interval, relative to
the median weight: a noisy commit pulls the fit less.

The segmentation proposes; the bootstrap decides. Each boundary is checked with `stats.compare`
between the pooled timings of the segments on either side (every process of every commit in it);
while some boundary's interval does not clear 1 ± the threshold, the least clear of them is dropped
and its two segments merged. What remains are the steps, each with its comparison.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness import stats

GAMMAS = 40  # gammas tried between gamma_0 * 0.1 / n and gamma_0 (gamma_0: the one-segment residual)


def _weighted_median(y: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(y, kind="stable")
    cum = np.cumsum(w[order])
    return float(y[order][np.searchsorted(cum, cum[-1] / 2)])


def costs(y: Sequence[float], w: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(levels, residuals): for each segment y[l..r] (inclusive), its weighted median and its weighted L1
    distance from it, as upper-triangular n x n arrays."""
    y, w = np.asarray(y, dtype=float), np.asarray(w, dtype=float)
    n = len(y)
    level, dist = np.full((n, n), np.nan), np.full((n, n), np.inf)
    for left in range(n):
        for right in range(left, n):
            m = _weighted_median(y[left:right + 1], w[left:right + 1])
            level[left, right] = m
            dist[left, right] = float(np.sum(w[left:right + 1] * np.abs(y[left:right + 1] - m)))
    return level, dist


def potts(dist: np.ndarray, gamma: float) -> list[int]:
    """The exact minimiser of the Potts functional for one gamma: the segments' (exclusive) right ends."""
    n = len(dist)
    best = np.empty(n + 1)  # best[r]: the least cost of y[0..r-1]
    best[0] = -gamma
    start = np.zeros(n + 1, dtype=int)
    for r in range(1, n + 1):
        options = best[:r] + gamma + dist[:r, r - 1]
        start[r] = int(np.argmin(options))
        best[r] = options[start[r]]
    ends, r = [], n
    while r > 0:
        ends.append(int(r))
        r = int(start[r])
    return ends[::-1]


def segment(y: Sequence[float], w: Sequence[float] | None = None) -> list[int]:
    """The right ends of the segments asv's criterion picks among the Potts solutions over gamma."""
    n = len(y)
    if n < 2:
        return [n] if n else []
    w = np.ones(n) if w is None else np.asarray(w, dtype=float)
    level, dist = costs(y, w)
    gamma_0 = dist[0, n - 1] or 1.0
    beta = 4 * math.log(n) / n
    best, chosen = math.inf, [n]
    for gamma in gamma_0 * np.geomspace(0.1 / n, 1.0, GAMMAS):
        ends = potts(dist, gamma)
        starts = [0, *ends[:-1]]
        levels = [level[s, e - 1] for s, e in zip(starts, ends, strict=True)]
        residual = sum(dist[s, e - 1] for s, e in zip(starts, ends, strict=True))
        if len(levels) > 2:
            floor = 0.1 * min(abs(b - a) for a, b in zip(levels, levels[1:], strict=False))
        else:
            floor = 0.001 * min(abs(v) for v in levels)
        score = beta * len(ends) + math.log(max(floor, 1e-300) + residual)
        if score < best:
            best, chosen = score, ends
    return chosen


@dataclass(frozen=True)
class Step:
    """A step at commit index `at` (the first commit of the new level): the figure after it over the
    figure before it, with its interval and verdict (`stats.Comparison`)."""

    at: int
    comparison: stats.Comparison


Timings = Sequence[Sequence[Sequence[float]]]  # per commit, its processes, each its timings


def steps(per_commit: Timings, medians: Sequence[float], weights: Sequence[float] | None = None,
          threshold: float = stats.THRESHOLD) -> list[Step]:
    """The confirmed steps of one figure's history (`per_commit`: each commit's processes, in commit order)."""
    ends = segment(medians, weights)
    bounds = ends[:-1]  # the first commit of each later segment
    while bounds:
        edges = [0, *bounds, len(per_commit)]
        pooled = [[p for c in per_commit[a:b] for p in c] for a, b in zip(edges, edges[1:], strict=False)]
        found = [Step(at, stats.compare(pooled[i + 1], pooled[i], threshold)) for i, at in enumerate(bounds)]
        unclear = [s for s in found if not s.comparison.significant]
        if not unclear:
            return found
        weakest = min(unclear, key=lambda s: abs(math.log(s.comparison.ratio)))
        bounds = [b for b in bounds if b != weakest.at]
    return []


def weights(medians: Sequence[float], lows: Sequence[float], highs: Sequence[float]) -> list[float]:
    """asv's weights: each commit's median over its interval's width, relative to the median weight (a commit
    whose interval has no width, one timing, gets the median weight)."""
    raw = [m / (h - lo) if h > lo else math.nan for m, lo, h in zip(medians, lows, highs, strict=True)]
    finite = [r for r in raw if math.isfinite(r)]
    middle = float(np.median(finite)) if finite else 1.0
    return [r / middle if math.isfinite(r) else 1.0 for r in raw]
