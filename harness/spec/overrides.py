"""Editing an experiment's raw tables before they are read: `--set key=value` overrides, a sweep's
values put at their dotted keys, and the short forms (`optimizer = "adam"`) written as tables."""

from __future__ import annotations

import tomllib
from typing import Any

from harness.errors import SpecError
from harness.spec.tables import MAX_DEPTH, too_deep


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Set one `a.b.c=value` in `raw`; the value is parsed as TOML, else taken as a string."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise SpecError(f"--set {item!r}: expected KEY=VALUE, such as training.epochs=5")
    deep = SpecError(f"--set {key}=...: the value is nested more than {MAX_DEPTH} deep")
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()
    except RecursionError:  # nested past Python's own limit
        raise deep from None
    if too_deep(value):
        raise deep
    set_path(raw, key, value, f"--set {item!r}")


def set_path(raw: dict[str, Any], key: str, value: Any, where: str) -> None:
    """Put `value` at the dotted `key` of `raw` (list entries by index), creating tables on the way."""
    parts = key.split(".")
    node: Any = raw
    for depth, part in enumerate(parts[:-1]):
        node = _child(node, part, ".".join(parts[: depth + 1]), create=True)
    last = parts[-1]
    if isinstance(node, list):
        _index(node, last, key)
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise SpecError(f"{where}: {'.'.join(parts[:-1])} is a value, not a table")
    normalize(raw)


def _child(node: Any, part: str, key: str, create: bool) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, key)]
    if not isinstance(node, dict):
        raise SpecError(f"--set {key}: {key.rpartition('.')[0]} is a value, not a table")
    if part not in node and create:
        node[part] = {}
    child = node[part]
    if isinstance(child, str) and part in ("optimizer", "activation", "output_activation"):
        child = node[part] = {"name": child}
    return child


def _index(node: list, part: str, key: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        parent = key.rpartition(".")[0]
        raise SpecError(f"--set {key}: {parent} has {len(node)} entries, numbered from 0")
    return int(part)


def normalize(raw: dict[str, Any]) -> dict[str, Any]:
    """Write the short forms `optimizer = "adam"` and `activation = "relu"` as tables."""
    training, network = raw.get("training"), raw.get("network")
    if isinstance(training, dict) and isinstance(training.get("optimizer"), str):
        training["optimizer"] = {"name": training["optimizer"]}
    if isinstance(network, dict):
        if isinstance(network.get("output_activation"), str):
            network["output_activation"] = {"name": network["output_activation"]}
        for key in ("hidden", "layers"):
            for layer in network.get(key, []) if isinstance(network.get(key), list) else []:
                if isinstance(layer, dict) and isinstance(layer.get("activation"), str):
                    layer["activation"] = {"name": layer["activation"]}
    return raw
