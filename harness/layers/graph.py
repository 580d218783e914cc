"""How the layers of a network are wired: which outputs each layer takes, and the shapes on every edge.

A layer takes the output of the layer before it, unless it names its sources (`from`): earlier
layers by their `name`, or `"input"`, the network's input. A kind that merges (`add`, `concat`)
takes two or more sources and sees a tuple of shapes where other kinds see one. A chain (no
layer naming a source) is wired as it always was. Every layer's output must be used by a later
one; the last layer's is the network's output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.layers.base import LayerSpec, Shape, ShapeError

INPUT = "input"  # the name `from` gives the network's input
NO_SOURCE = -1  # the index standing for the network's input among a layer's sources


class WiringError(ShapeError):
    """A layer that cannot be wired as written; `layer` is its index, the message names the rest."""

    def __init__(self, layer: int, message: str) -> None:
        super().__init__(message)
        self.layer = layer


@dataclass(frozen=True)
class Wiring:
    """`sources[i]`: the indices of the layers whose outputs layer i takes (NO_SOURCE: the input);
    `inputs[i]`: what layer i is given, a shape (a tuple of shapes for a merging kind);
    `outputs[i]`: the shape layer i makes."""

    sources: tuple[tuple[int, ...], ...]
    inputs: tuple[Any, ...]
    outputs: tuple[Shape, ...]

    @property
    def is_chain(self) -> bool:
        return all(src == (i - 1,) for i, src in enumerate(self.sources))

    def consumers(self) -> list[list[int]]:
        """For every layer, the later layers taking its output (in order; a layer twice if it takes it twice)."""
        out: list[list[int]] = [[] for _ in self.sources]
        for i, src in enumerate(self.sources):
            for j in src:
                if j != NO_SOURCE:
                    out[j].append(i)
        return out


def label(layers: tuple[LayerSpec, ...], j: int) -> str:
    """A source as the message names it: the input, a layer's name, or its index."""
    if j == NO_SOURCE:
        return INPUT
    return repr(layers[j].name) if layers[j].name else f"layer {j} ({layers[j].type})"


def wire(input_shape: Shape, layers: tuple[LayerSpec, ...]) -> Wiring:
    """The wiring of `layers` on samples of `input_shape`; WiringError names the first layer that
    does not fit (an unknown, later or repeated name, a wrong number of sources, shapes a kind
    refuses, an output nothing takes)."""
    names: dict[str, int] = {}
    sources, inputs, outputs = [], [], []

    def shape_of(j: int) -> Shape:
        return tuple(input_shape) if j == NO_SOURCE else outputs[j]

    for i, layer in enumerate(layers):
        src = tuple(_source(layers, names, i, name) for name in layer.inputs) or (i - 1,)
        merges = layer.kind.merges
        if merges and len(src) < 2:
            raise WiringError(i, f"{layer.type} takes two or more inputs: name them in from = [...]")
        if not merges and len(src) > 1:
            raise WiringError(i, f"{layer.type} takes one input, from names {len(src)}")
        if layer.kind.takes_ids and src != (NO_SOURCE,):
            raise WiringError(i, f"{layer.type} reads token ids, the network's input: it must be the first layer "
                                 "(or take from = \"input\")")
        given = tuple(shape_of(j) for j in src) if merges else shape_of(src[0])
        try:
            out = tuple(layer.out_shape(given))
        except ShapeError as e:
            on = (", ".join(f"{label(layers, j)} {list(shape_of(j))}" for j in src) if layer.inputs
                  else f"input {list(given)}")
            raise WiringError(i, f"on {on}: {e}") from None
        if layer.name:
            if layer.name == INPUT or layer.name in names:
                taken = "the network's input" if layer.name == INPUT else f"layer {names[layer.name]}'s name"
                raise WiringError(i, f"name = {layer.name!r} is already {taken}")
            names[layer.name] = i
        sources.append(src)
        inputs.append(given)
        outputs.append(out)
    wiring = Wiring(tuple(sources), tuple(inputs), tuple(outputs))
    for j, takers in enumerate(wiring.consumers()[:-1]):
        if not takers:
            nxt = layers[j + 1]
            raise WiringError(j, f"its output {list(outputs[j])} goes to no layer: the next one ({nxt.type}) "
                                 f"takes from = {list(nxt.inputs)}; name this layer in a from, or remove it")
    return wiring


def _source(layers: tuple[LayerSpec, ...], names: dict[str, int], i: int, name: str) -> int:
    if name == INPUT:
        return NO_SOURCE
    if name in names:
        return names[name]
    later = [j for j, layer in enumerate(layers) if layer.name == name and j >= i]
    if later:
        raise WiringError(i, f"from names {name!r}, layer {later[0]}, which does not come before it")
    known = ", ".join(repr(n) for n in [INPUT, *names])
    raise WiringError(i, f"from names {name!r}, which no earlier layer is called; earlier names: {known}")
