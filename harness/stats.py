"""Whether a ratio of two runtimes' timings is a real difference: a bootstrap confidence interval
and its verdict, one method for `harness perf` and the bench's speedup.

A side's timings are either its repeats (one figure per process, `[t0, t1, ...]`) or, where each
process timed several epochs or steps, one list per process (`[[e1, e2, ...], [e1, ...], ...]`).
The ratio is `statistic(a) / statistic(b)` over every timing pooled (the median by default). Its
95% interval is a percentile bootstrap: each resample draws the processes with replacement, then,
inside each drawn process, its timings with replacement (Kalibera and Jones's hierarchical
resampling; with one figure per process it is the plain bootstrap over repeats), the two sides
independently. The generator has a fixed seed: the same timings give the same interval.

A ratio is a difference only when its interval lies wholly above `1 + threshold` or wholly below
`1 - threshold` (noise threshold, 2% by default); otherwise the verdict is `~`, no significant
difference. Where that verdict is `~` and a side's coefficient of variation across processes is
above 10% (pyperf's rule), the spread is too wide for the question asked, and the comparison carries
a warning with the number of repeats (processes) the interval would need to be within the threshold,
from its width now and the 1/sqrt(n) law. A ratio whose interval already decides it (a 10x speedup
measured on noisy seeds) needs no more repeats and gets no warning.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95
THRESHOLD = 0.02  # the noise threshold: a ratio within 1 ± this is no difference
CV_LIMIT = 0.10  # pyperf's rule: above it, the spread is too wide to trust few repeats
RESAMPLES = 2000
SEED = 20240  # fixed: the same data gives the same interval
BLOCK = 2_000_000  # timings drawn at once

Timings = Sequence[float] | Sequence[Sequence[float]]


@dataclass(frozen=True)
class Comparison:
    """`ratio` = a / b with its confidence interval `[low, high]`, the outer band `[lowest, highest]`
    (one side's extreme process against the other's opposite extreme), the verdict (+1: the ratio is
    above 1 + threshold, -1: below 1 - threshold, 0: `~`), the larger side's coefficient of variation
    and, where it is above `CV_LIMIT`, the repeats the interval would need (else 0)."""

    ratio: float
    low: float
    high: float
    lowest: float
    highest: float
    verdict: int
    cv: float
    repeats_needed: int
    threshold: float = THRESHOLD

    @property
    def significant(self) -> bool:
        return self.verdict != 0

    def warning(self, repeats: str = "repeats") -> str:
        """The spread warning ('' when the spread is within the rule), naming the repeats as the caller calls them."""
        if not self.repeats_needed:
            return ""
        return (f"coefficient of variation {self.cv:.0%} > {CV_LIMIT:.0%}: about {self.repeats_needed} {repeats} "
                f"would bring the interval within ±{self.threshold:.0%}")


def processes(timings: Timings) -> list[np.ndarray]:
    """A side's timings as one array per process (a bare figure is a process with one timing)."""
    out = [np.atleast_1d(np.asarray(t, dtype=float)) for t in timings]
    out = [p[np.isfinite(p)] for p in out]
    return [p for p in out if p.size]


def resample(timings: Timings, statistic: Callable = np.median, resamples: int = RESAMPLES,
             rng: np.random.Generator | None = None) -> np.ndarray:
    """`statistic` of the pooled timings over `resamples` hierarchical bootstrap resamples: processes
    drawn with replacement, then each drawn process's timings with replacement."""
    rng = rng or np.random.default_rng(SEED)
    procs = processes(timings)
    if not procs:
        raise ValueError("no timings to resample")
    widest = max(p.size for p in procs)
    padded = np.full((len(procs), widest), np.nan)
    for i, p in enumerate(procs):
        padded[i, :p.size] = p
    sizes = np.array([p.size for p in procs])
    chosen = rng.integers(0, len(procs), size=(resamples, len(procs)))  # the processes of each resample
    block = max(1, BLOCK // (len(procs) * widest))  # resamples at a time: memory stays bounded
    out = []
    for start in range(0, resamples, block):
        c = chosen[start:start + block]
        n = sizes[c]  # (resamples, processes): how many timings each drawn process holds
        inner = (rng.random((len(c), len(procs), widest)) * n[..., None]).astype(int)  # within each process
        draws = padded[c[..., None], inner]
        draws[np.arange(widest)[None, None, :] >= n[..., None]] = np.nan  # a shorter process draws its own count
        flat = draws.reshape(len(c), -1)
        out.append(np.nanmedian(flat, axis=1) if statistic is np.median
                   else np.array([statistic(row[np.isfinite(row)]) for row in flat]))
    return np.concatenate(out)


def coefficient_of_variation(timings: Timings, statistic: Callable = np.median) -> float:
    """Standard deviation over mean of the processes' own figures (`statistic` of each); with one
    process, the robust spread of its timings (1.4826 x median absolute deviation, over the median:
    a few stray epochs do not move the median the ratio uses); NaN with a single timing."""
    procs = processes(timings)
    if len(procs) > 1:
        values = np.array([statistic(p) for p in procs])
        return float(np.std(values, ddof=1) / np.mean(values))
    if not procs or procs[0].size < 2:
        return math.nan
    t = procs[0]
    return float(1.4826 * np.median(np.abs(t - np.median(t))) / np.median(t))


def repeats_needed(repeats: int, ratio: float, low: float, high: float, threshold: float = THRESHOLD) -> int:
    """Repeats per side for the interval to come within ±threshold of the ratio: an interval's width
    shrinks as 1/sqrt(repeats), so from its relative half-width h over `repeats`, n = repeats·(h/threshold)²
    (never fewer than one more than now)."""
    half = (high - low) / 2 / ratio
    return max(repeats + 1, math.ceil(repeats * (half / threshold) ** 2 - 1e-9))


def verdict(low: float, high: float, threshold: float = THRESHOLD) -> int:
    """+1 when the interval lies above 1 + threshold, -1 when below 1 - threshold, else 0 (`~`)."""
    if low > 1 + threshold:
        return 1
    if high < 1 - threshold:
        return -1
    return 0


def compare(a: Timings, b: Timings, threshold: float = THRESHOLD, level: float = LEVEL,
            statistic: Callable = np.median, resamples: int = RESAMPLES) -> Comparison:
    """statistic(a) / statistic(b) with its bootstrap interval, outer band, verdict and spread warning."""
    pa, pb = processes(a), processes(b)
    if not pa or not pb:
        raise ValueError("both sides need at least one timing")
    pooled = lambda ps: float(statistic(np.concatenate(ps)))  # noqa: E731
    rng = np.random.default_rng(SEED)
    ratios = resample(pa, statistic, resamples, rng) / resample(pb, statistic, resamples, rng)
    tail = (1 - level) / 2 * 100
    low, high = (float(v) for v in np.percentile(ratios, [tail, 100 - tail]))
    middle = [float(statistic(p)) for p in pa], [float(statistic(p)) for p in pb]
    lowest, highest = min(middle[0]) / max(middle[1]), max(middle[0]) / min(middle[1])
    cv = max((c for c in (coefficient_of_variation(pa, statistic), coefficient_of_variation(pb, statistic))
              if math.isfinite(c)), default=math.nan)
    ratio = pooled(pa) / pooled(pb)
    decided = verdict(low, high, threshold)
    needed = repeats_needed(min(len(pa), len(pb)), ratio, low, high, threshold) if cv > CV_LIMIT and not decided else 0
    return Comparison(ratio, low, high, lowest, highest, decided, cv, needed, threshold)


def cell(c: Comparison, fmt: str = "{:.2f}", unit: str = "x") -> str:
    """A ratio as `1.31x [1.25–1.38] (1.10–1.50)`: the ratio, its 95% interval in brackets, min–max in
    parentheses (the outer band); `~` before it when the interval does not clear 1 ± the threshold."""
    f = fmt.format
    return (f"{'~' if not c.significant else ''}{f(c.ratio)}{unit} [{f(c.low)}–{f(c.high)}] "
            f"({f(c.lowest)}–{f(c.highest)})")


def words(c: Comparison, above: str = "faster", below: str = "slower") -> str:
    """The verdict in words: `above` / `below` 1, or `~ no significant difference`."""
    return {1: above, -1: below, 0: "~ no significant difference"}[c.verdict]


OLYMPIC_MIN = 5  # MLPerf's rule needs at least five results to drop two of them


def olympic_mean(values: Sequence[float]) -> float:
    """The mean without the lowest and the highest value, MLPerf's rule for time to target (it keeps
    one lucky or unlucky seed from moving the figure); NaN with fewer than `OLYMPIC_MIN` values."""
    v = np.sort(np.asarray([x for x in values if math.isfinite(x)], dtype=float))
    return float(v[1:-1].mean()) if len(v) >= OLYMPIC_MIN else math.nan
