"""PyTorch as a PyTorch user writes it: the peer rows of `harness perf`.

`PlainTorch` is the training loop of PyTorch's own examples: an `nn.Sequential` (for a network
that is not a chain, `Graph`, the module a user writes for a residual network), each batch
indexed from the data's tensors just before its step (`Batches`, as a DataLoader over a
TensorDataset hands it over, and as the engines gather theirs inside their loops), and per batch
`zero_grad`, forward, loss, `backward`, `step`, nothing else. Each pre-norm transformer encoder
block of the file is the one module a user writes for it, nn.TransformerEncoderLayer
(harness.reference.encoder), loaded with the block's tensors. It starts from the harness's
initial parameters and takes the harness's batch order, so its figures differ from the
harness's torch engine only by how the loop is written, and by its dropout: `nn.Dropout` with
torch's own random masks, as users write it, where the twin draws the engine-neutral ones. With
`compile=True` the model goes through `torch.compile` (the default inductor backend, which on
CPU compiles C++ with the machine's compiler); the first steps pay for the compilation and
belong to the warm-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from harness.init import initial_state
from harness.reference.encoder import encoder_blocks, encoder_layer, rewired
from harness.reference.engine import DTYPES, LOSSES, make_optimizer, per_step
from harness.reference.layers.dropout import MaskedDropout
from harness.reference.modules import activation_module, layer_modules, run_wired
from harness.spec import NetworkSpec, TrainingSpec


class PlainTorch:
    def __init__(self, network: NetworkSpec, training: TrainingSpec, params: dict[str, np.ndarray],
                 compile: bool = False) -> None:
        dtype = DTYPES[training.dtype]
        loss_cls, fused_with = LOSSES[training.loss]
        params = {**initial_state(network, training.dtype), **params}  # state left out starts at its initial values
        steps: list[tuple[nn.Module, nn.Module]] = []  # each layer of the spec and its activation
        modules = layer_modules(network, dtype)
        for i, (layer, act) in enumerate(modules):
            with torch.no_grad():
                for name, p in [*layer.named_parameters(), *layer.named_buffers()]:
                    p.copy_(torch.from_numpy(np.asarray(params[f"layers.{i}.{name}"])))
            if isinstance(layer, MaskedDropout):
                layer = nn.Dropout(layer.p)  # as users write it: torch's own masks
            last = i == len(modules) - 1
            if last and fused_with == network.output_activation.name:
                act = nn.Identity()  # the loss takes logits where it fuses
            steps.append((layer, act))
        if network.is_chain:
            self.model: nn.Module = nn.Sequential(*(m for step in steps for m in step
                                                    if not isinstance(m, nn.Identity)))
        else:
            blocks = encoder_blocks(network)
            kept, sources = rewired(network.wiring.sources, blocks)
            for b in blocks:  # the block's seven layers become torch's encoder layer, at its last layer's place
                steps[b.last] = (encoder_layer(b, [layer for layer, _ in steps[b.first:b.last + 1]], dtype),
                                 nn.Identity())
            self.model = Graph([steps[j] for j in kept], sources)
        self.step_model = torch.compile(self.model) if compile else self.model
        self.loss_fn = per_step(loss_cls())
        self.optimizer = make_optimizer(training.optimizer.name, self.model.parameters(),
                                        training.optimizer.kwargs())
        out_act = network.output_activation
        self.output = activation_module(out_act) if fused_with == out_act.name else nn.Identity()

    @staticmethod
    def slice_batches(x: np.ndarray, y: np.ndarray, plan: Sequence[np.ndarray]) -> Batches:
        """The batches of `plan`, each indexed from the data when the loop reaches it."""
        return Batches(torch.from_numpy(x), torch.from_numpy(y), [torch.from_numpy(idx) for idx in plan])

    def train(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
        model, opt, loss_fn = self.step_model, self.optimizer, self.loss_fn
        model.train()
        for xb, yb in batches:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> np.ndarray:
        self.model.eval()
        return self.output(self.model(torch.from_numpy(x))).numpy()


class Batches:
    """The batches of a plan as a DataLoader over a TensorDataset hands them over: each one indexed from
    the whole tensors just before its step, so that it arrives in cache as the engines' own gathers do.
    (A whole epoch sliced ahead of the loop, 188 MB for MNIST, comes back from memory batch by batch:
    measured on an AMD EPYC at 2 threads, 67,000 samples/s against 99,500 with each batch indexed as it is due.)"""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, plan: Sequence[torch.Tensor]) -> None:
        self.x, self.y, self.plan = x, y, list(plan)

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, k: slice) -> Batches:
        return Batches(self.x, self.y, self.plan[k])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for idx in self.plan:
            yield self.x[idx], self.y[idx]


class Graph(nn.Module):
    """A network that is not a chain, written as a PyTorch user writes a residual network: its layers
    as modules, and a forward that runs them in order, each on the outputs its `from` names (-1: the
    network's input), so that a skip is `a + b` and a merge `torch.cat` (the add and concat kinds'
    modules, harness.reference.layers)."""

    def __init__(self, steps: Sequence[tuple[nn.Module, nn.Module]], sources: Sequence[tuple[int, ...]]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layer for layer, _ in steps)
        self.acts = nn.ModuleList(act for _, act in steps)
        self.sources = sources

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_wired(x, self.layers, self.acts, self.sources)


def compile_works() -> None:
    """Build and run a tiny model through torch.compile; raises whatever stops it on this machine
    (no C++ compiler, an unsupported platform)."""
    m = torch.compile(nn.Linear(2, 1))
    m(torch.zeros(1, 2)).sum().backward()
