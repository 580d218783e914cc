"""Which machine a figure was measured on, from the machine record a run is tagged with
(`harness.machine.record`): the CPU model, the usable cores, the SIMD extensions, each library's BLAS
library and kernel, and the kernel overrides. Two runs whose records differ in any of these are on
different machines, and their figures are never compared or drawn together. Versions and thread
counts are left out: they are what a history is meant to follow, not another machine."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

FIELDS = ("machine.cpu", "machine.cores_usable", "machine.simd", "env.kernel_overrides")
BLAS = re.compile(r"blas\.[^.]+\.(library|kernel)")

Machine = tuple[tuple[str, str], ...]  # (tag, value) pairs, sorted: hashable, one per machine


def machine(tags: Mapping[str, object]) -> Machine:
    """The fields of a run's tags that name its machine."""
    return tuple(sorted((k, str(v)) for k, v in tags.items()
                        if (k in FIELDS or BLAS.fullmatch(k)) and isinstance(v, str) and v))


def merged(machines: Iterable[Machine]) -> dict[str, set[str]]:
    """Each field's values over several runs (one side of a comparison: a bench's runs of both engines
    record each its own engine's BLAS)."""
    out: dict[str, set[str]] = {}
    for m in machines:
        for k, v in m:
            out.setdefault(k, set()).add(v)
    return out


def group(records: Sequence[Machine]) -> tuple[dict[Machine, int], list[Machine]]:
    """Each record's machine (its index) and each machine's fields: records that agree on every field both
    name are one machine (a scratch run records NumPy's BLAS alone, a torch run torch's too), numbered in
    the order given."""
    found: list[dict[str, str]] = []
    index: dict[Machine, int] = {}
    for r in records:
        if r in index:
            continue
        fields = dict(r)
        for i, m in enumerate(found):
            if all(m[k] == v for k, v in fields.items() if k in m):
                m.update(fields)
                index[r] = i
                break
        else:
            found.append(fields)
            index[r] = len(found) - 1
    return index, [tuple(sorted(m.items())) for m in found]


def differences(a: Mapping[str, set[str]], b: Mapping[str, set[str]]) -> list[str]:
    """The fields both sides record with different values, as `field: a-value vs b-value`."""
    return [f"{k} {', '.join(sorted(a[k]))!r} vs {', '.join(sorted(b[k]))!r}"
            for k in sorted(a.keys() & b.keys()) if a[k] != b[k]]


def describe(fields: Mapping[str, set[str]] | Machine) -> str:
    """One line naming a machine: `AMD EPYC, 2 usable cores, SIMD avx2,fma; numpy openblas (Haswell); kernel
    overrides: none`."""
    f = {k: ", ".join(sorted(v)) for k, v in fields.items()} if isinstance(fields, Mapping) else dict(fields)
    libs = sorted({k.split(".")[1] for k in f if BLAS.fullmatch(k)})
    blas = "; ".join(f"{lib} {f.get(f'blas.{lib}.library', '?')} ({f.get(f'blas.{lib}.kernel', '?')})" for lib in libs)
    return (f"{f.get('machine.cpu', 'unknown CPU')}, {f.get('machine.cores_usable', '?')} usable cores, SIMD "
            f"{f.get('machine.simd') or 'none listed'}" + (f"; {blas}" if blas else "")
            + f"; kernel overrides: {f.get('env.kernel_overrides', '?')}")
