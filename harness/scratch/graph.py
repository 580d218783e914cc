"""A network's layers run as a graph: each layer given the outputs its spec's wiring names, and
backward adding up the gradients of an output that feeds several layers.

A node is a layer of the spec with the activation after it (one or two scratch layers). Nodes run
in the spec's order, which is topological (a layer takes only earlier outputs). Backward walks
them in reverse and stops below the parameters: a node whose inputs, and theirs, hold no weights
needs no gradient. A chain never comes here (the network runs it as a plain loop).

Gradients: a layer returns dL/dx in a buffer of its own or as (part of) the gradient it was given,
never one array for two inputs (`add` copies); the first gradient reaching a node is taken as it
is, the next ones are added into a buffer of the graph's own.
"""

from __future__ import annotations

import numpy as np

from harness.layers import NO_SOURCE, Wiring
from harness.scratch.layers import Layer


class Graph:
    def __init__(self, wiring: Wiring, nodes: list[list[Layer]]) -> None:
        self.sources, self.nodes = wiring.sources, nodes
        self.merges = [node[0].spec.kind.merges for node in nodes]
        learns: list[bool] = []  # the node, or a node it reads from, has parameters
        for node, src in zip(nodes, self.sources, strict=True):
            learns.append(bool(node[0].param_shapes()) or any(j != NO_SOURCE and learns[j] for j in src))
        self.learns = learns
        self._sums: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        outs: list[np.ndarray] = []
        for node, src, merges in zip(self.nodes, self.sources, self.merges, strict=True):
            h = [x if j == NO_SOURCE else outs[j] for j in src] if merges else (
                x if src[0] == NO_SOURCE else outs[src[0]])
            for layer in node:
                h = layer.forward(h, training)
            outs.append(h)
        return outs[-1]

    def backward(self, g: np.ndarray) -> None:
        """Every parameter's gradient from dL/d(output of the last node)."""
        grads: list[np.ndarray | None] = [None] * len(self.nodes)
        grads[-1] = g
        for k in range(len(self.nodes) - 1, -1, -1):
            g, grads[k] = grads[k], None
            if g is None or not self.learns[k]:
                continue
            node, src = self.nodes[k], self.sources[k]
            need = [j != NO_SOURCE and self.learns[j] for j in src]
            for layer in node[:0:-1]:  # the activation, in place
                g = layer.backward(g)
            dx = node[0].backward(g, need_dx=any(need))
            if not any(need):
                continue
            for j, d, needed in zip(src, dx if self.merges[k] else [dx], need, strict=True):
                if needed:
                    grads[j] = d if grads[j] is None else self._add(j, grads[j], d)

    def _add(self, j: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """a + b in node j's sum buffer (a may be that buffer already)."""
        key = (j, a.shape)
        out = self._sums.get(key)
        if out is None:
            if len(self._sums) >= 32:  # a caller cycling through batch sizes
                self._sums.clear()
            out = self._sums[key] = np.empty(a.shape, dtype=a.dtype)
        np.add(a, b, out=out)
        return out
