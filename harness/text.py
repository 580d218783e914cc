"""How the harness writes its numbers, shared by report, perf, cli and playground: one figure
format, a measured range, plurals, durations and markdown tables.

Every measured figure in report.md is `figure(mean, spread)`: the spread rounded to one
significant digit (two when it begins with 1 or 2, where one digit would misstate it by up to
a third), the value rounded to the same decimal place, so that no digit is printed that the
seeds do not support.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

DIGITS = 4  # significant digits of a figure without a spread (one seed, or every seed alike)


def figure(value: float | None, spread: float | None = None) -> str:
    """`value ± spread` rounded where the spread puts it; the value alone to DIGITS significant
    digits when there is no spread; "—" when there is no value. Below 0.001 both are written
    with one power of ten, `(3.11 ± 0.07)e-05`; from 1,000 up with thousands separators."""
    if value is None or not math.isfinite(value):
        return "—"
    has_spread = spread is not None and math.isfinite(spread) and spread > 0
    size = max(abs(value), spread if has_spread else 0.0)
    if size == 0:
        return "0"
    if size < 1e-3:
        power = math.floor(math.log10(size))
        scale = 10.0**power
        return (f"({_fixed(value / scale, spread / scale)})e{power:+03d}" if has_spread
                else f"{_fixed(value / scale)}e{power:+03d}")
    return _fixed(value, spread if has_spread else None)


def _fixed(value: float, spread: float | None = None) -> str:
    if spread is None:
        return _number(value, DIGITS - 1 - math.floor(math.log10(abs(value))) if value else 0)
    power = math.floor(math.log10(spread))
    lead = int(spread / 10.0**power + 1e-9)
    decimals = (2 if lead < 3 else 1) - 1 - power
    grouped = abs(value) >= 1e3
    return f"{_number(value, decimals, grouped)} ± {_number(spread, decimals, grouped)}"


def _number(x: float, decimals: int, grouped: bool | None = None) -> str:
    """x rounded to `decimals` places (tens, hundreds, … when negative), thousands separated
    from 1,000 up (or as `grouped` says)."""
    x = round(x, decimals) + 0.0  # + 0.0: no "-0.00"
    comma = "," if (abs(x) >= 1e3 if grouped is None else grouped) else ""
    return f"{x:{comma}.{max(decimals, 0)}f}"


def span(mid: float, lo: float, hi: float, fmt: str = "{:,.0f}", unit: str = "") -> str:
    """A median and its range as `1,234 (1,200–1,250)`; `unit` follows the median alone (`1.23x (1.10–1.30)`)."""
    return f"{fmt.format(mid)}{unit} ({fmt.format(lo)}–{fmt.format(hi)})"


def plural(n: int | float, one: str, many: str | None = None) -> str:
    """`1 seed`, `3 seeds`, `10,000 test samples`."""
    n = int(n)
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def duration(seconds: float) -> str:
    """`42 s`, `368 s (6 min 8 s)`."""
    s = round(seconds)
    return f"{s} s" if s < 120 else f"{s} s ({s // 60} min {s % 60} s)"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int = 1) -> list[str]:
    """A markdown table, its first `text_columns` columns left-aligned and the figures right-aligned."""
    align = ["---"] * text_columns + ["--:"] * (len(header) - text_columns)
    return ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|",
            *("| " + " | ".join(row) + " |" for row in rows)]
