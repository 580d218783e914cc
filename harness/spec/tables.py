"""Reading one TOML table of an experiment file: typed access by key, defaults, checks, unknown keys
refused, every mistake a one-line `SpecError` naming the dotted key, the value and what is allowed."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from harness.errors import SpecError, suggest, unknown_name

MAX_COUNT = 10**9  # epochs, batch size, evaluation interval
MAX_DEPTH = 32  # tables and lists inside each other: an experiment has 4 or 5

REQUIRED = object()


def too_deep(value: Any) -> bool:
    """Whether `value` nests tables and lists more than `MAX_DEPTH` deep (walked without recursion, so
    that a value nested 100,000 deep is measured, not a RecursionError)."""
    todo = [(value, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, (dict, list, tuple)):
            if depth >= MAX_DEPTH:
                return True
            todo.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def read_json(text: str) -> Any:
    """JSON text (a file's saved spec or metadata) as plain data; a ValueError for text that is not JSON
    or is nested past `MAX_DEPTH`."""
    deep = ValueError(f"nested more than {MAX_DEPTH} deep")
    try:
        value = json.loads(text)
    except RecursionError:
        raise deep from None
    if too_deep(value):
        raise deep
    return value


class Table:
    """One TOML table being read: typed access by key, and unknown keys refused at the end."""

    def __init__(self, raw: Any, path: str) -> None:
        if not isinstance(raw, dict):
            raise SpecError(f"{path} = {raw!r}: must be a table (like {path} = {{ ... }})")
        self.raw, self.path, self.known = raw, path, set()

    def key(self, name: str) -> str:
        """The dotted key of `name` in this table; `key("")` is the prefix of every key here."""
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = REQUIRED,
            check: Callable[[Any], bool] | None = None, allowed: str = "") -> Any:
        self.known.add(name)
        if name not in self.raw:
            if default is REQUIRED:
                raise SpecError(f"{self.key(name)} is missing; {allowed or 'it has no default'}")
            return default
        value = typed(self.raw[name], kind, self.key(name))
        if check is not None and not check(value):
            raise SpecError(f"{self.key(name)} = {value!r}: {allowed}")
        return value

    def table(self, name: str, default: Any = REQUIRED) -> Table:
        self.known.add(name)
        if name not in self.raw and default is not REQUIRED:
            return Table(default, self.key(name))
        if name not in self.raw:
            raise SpecError(f"{self.key(name)} is missing: add a [{self.key(name)}] table")
        return Table(self.raw[name], self.key(name))

    def rest(self) -> dict[str, Any]:
        """Keys not yet read, for tables whose keys depend on a value (activation parameters)."""
        return {k: v for k, v in self.raw.items() if k not in self.known}

    def done(self, known: Iterable[str] = ()) -> None:
        known = self.known | set(known)
        for name in self.raw:
            if name not in known:
                where = f"[{self.path}]" if self.path else "the top level"
                raise SpecError(f"unknown key {self.key(name)!r}{suggest(name, known, self.key(''))}; "
                                f"{where} takes: {', '.join(sorted(known))}")


KIND_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
               list: "a list", dict: "a table"}


def typed(value: Any, kind: type | tuple[type, ...], key: str) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    for k in kinds:
        if k is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:  # an integer past float's range (JSON and TOML take any number of digits)
                raise SpecError(f"{key} = an integer past \u00b1{sys.float_info.max:.3g}: too large for "
                                "a number") from None
            if not math.isfinite(number):  # TOML's nan and inf: no setting of the harness means them
                fail(key, value, "must be a finite number")
            return number
        if k is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if k not in (int, float) and isinstance(value, k):
            return value
    expected = " or ".join(KIND_NAMES.get(k, k.__name__) for k in kinds)
    return fail(key, value, f"must be {expected}")


def fail(key: str, value: Any, why: str) -> Any:
    raise SpecError(f"{key} = {value!r}: {why}")


def name_in(t: Table, key: str, kind: str, registry: Mapping[str, Any], default: Any = REQUIRED) -> str:
    value = t.get(key, str, default, allowed=f"known: {', '.join(sorted(registry))}")
    if value not in registry:
        raise SpecError(unknown_name(kind, value, registry, key=t.key(key)))
    return value


def positive(t: Table, key: str, default: Any = REQUIRED, maximum: int = MAX_COUNT) -> int:
    return t.get(key, int, default, check=lambda v: 1 <= v <= maximum,
                 allowed=f"must be an integer from 1 to {maximum:,}")
