"""The names and `from` lists of a network read from a graph: a layer that does not take the one
before it says which layers it takes, by names given where needed ("l3" for layer 3), or by the
names the file's saved experiment gives them where that saved network is wired the same way."""

from __future__ import annotations

from typing import Any

INPUT = -1  # the source index of the network's input


def name(layers: list[dict[str, Any]], sources: list[tuple[int, ...]], saved: list[Any]) -> None:
    """Give `layers` (plain dicts, the output layer left out) the `name` and `from` keys their
    `sources` need: the saved layers' own where they name the same wiring, else "l<index>"."""
    if _wiring(saved, [layer["type"] for layer in layers]) == sources:
        for ours, theirs in zip(layers, saved, strict=True):
            ours.update({key: theirs[key] for key in ("name", "from") if key in theirs})
        return
    takes = [src != (i - 1,) for i, src in enumerate(sources)]
    named = {j for i, src in enumerate(sources) if takes[i] for j in src if j != INPUT}
    for i, layer in enumerate(layers):
        if i in named:
            layer["name"] = f"l{i}"
        if takes[i]:
            layer["from"] = ["input" if j == INPUT else f"l{j}" for j in sources[i]]


def _wiring(saved: list[Any], types: list[str]) -> list[tuple[int, ...]] | None:
    """The sources of each layer of a saved network's plain layers, if they are of `types` and their
    names and `from` lists are well formed; None otherwise."""
    if len(saved) != len(types) or not all(isinstance(x, dict) and x.get("type") == t
                                           for x, t in zip(saved, types, strict=True)):
        return None
    names: dict[str, int] = {"input": INPUT}
    out = []
    for i, layer in enumerate(saved):
        taken = layer.get("from", [])
        taken = [taken] if isinstance(taken, str) else taken
        if not isinstance(taken, list) or not all(isinstance(n, str) and n in names for n in taken):
            return None
        out.append(tuple(names[n] for n in taken) or (i - 1,))
        if isinstance(layer.get("name"), str):
            names[layer["name"]] = i
    return out
