"""The PyTorch engine: the same network, loss and optimizer as the scratch engine, in torch."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from harness.init import initial_state
from harness.metrics import get as get_metric
from harness.reference.modules import Net
from harness.spec import NetworkSpec, TrainingSpec

DTYPES = {"float32": torch.float32, "float64": torch.float64}

# loss name -> (module factory, output activation whose logits it takes, or None)
LOSSES = {
    "mse": (nn.MSELoss, None),
    "bce": (nn.BCEWithLogitsLoss, "sigmoid"),
    "cross_entropy": (nn.CrossEntropyLoss, "softmax"),
}


def per_step(loss_fn: nn.Module) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss over every output row: a network with an output per time step (N, T, K) is scored
    as N·T rows of K, so that its mean is over every step, as the scratch engine takes it."""
    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if out.ndim > 2:
            out, y = out.reshape(-1, out.shape[-1]), y.reshape(-1) if not y.is_floating_point() else y.reshape(
                -1, out.shape[-1])
        return loss_fn(out, y)
    return loss


def make_optimizer(name: str, params, settings: dict) -> torch.optim.Optimizer:
    """torch.optim's optimizer of that name with the spec's hyperparameters."""
    s = dict(settings)
    lr = s.pop("learning_rate")
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]
    return cls(params, lr=lr, **s)


class TorchEngine:
    """Built from a network spec, a training spec and initial parameters copied one to one."""

    name = "torch"

    def __init__(self, network: NetworkSpec, training: TrainingSpec, params: dict[str, np.ndarray],
                 seed: int = 0) -> None:
        self.network, self.training = network, training
        self.dtype = DTYPES[training.dtype]
        loss_cls, fused_with = LOSSES[training.loss]
        self.model = Net(network, self.dtype, logits_out=fused_with == network.output_activation.name, seed=seed)
        params = {**initial_state(network, training.dtype), **params}  # state left out starts at its initial values
        self.model.load_state_dict({k: torch.from_numpy(np.array(v, dtype=training.dtype)) for k, v in params.items()})
        self.loss_fn = per_step(loss_cls())
        self.optimizer = make_optimizer(training.optimizer.name, self.model.parameters(),
                                        training.optimizer.kwargs())
        self.scheduler = (torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=training.lr_decay)
                          if training.lr_decay != 1.0 else None)

    @staticmethod
    def set_threads(n: int) -> dict[str, int]:
        torch.set_num_threads(n)
        return {"torch": torch.get_num_threads(), "torch_interop": torch.get_num_interop_threads()}

    @staticmethod
    def versions() -> dict[str, str]:
        """The torch build and its determinism settings (CPU kernels here are deterministic for a
        fixed thread count; deterministic algorithms are not forced)."""
        return {"torch": torch.__version__,
                "torch.deterministic_algorithms": str(torch.are_deterministic_algorithms_enabled()).lower(),
                "torch.mkldnn": str(torch.backends.mkldnn.is_available()).lower()}

    def train_epoch(self, x: np.ndarray, y: np.ndarray, batch_indices: Iterable[np.ndarray]) -> float:
        """One pass over the batches; the sample-weighted mean batch loss."""
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        model, opt, loss_fn = self.model, self.optimizer, self.loss_fn
        model.train()
        total = torch.zeros((), dtype=torch.float64)
        seen = 0
        for idx in batch_indices:
            it = torch.from_numpy(idx)
            xb, yb = xt.index_select(0, it), yt.index_select(0, it)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.detach() * len(idx)
            seen += len(idx)
        if self.scheduler is not None:
            self.scheduler.step()
        return float(total) / seen

    def gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """Loss on (x, y) and every parameter's gradient, without a step (in training mode, as a step computes them)."""
        self.model.train()
        self.model.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        grads = {k: p.grad.detach().numpy().copy() for k, p in self.model.named_parameters()}
        self.model.zero_grad(set_to_none=True)
        return float(loss.detach()), grads

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> np.ndarray:
        self.model.eval()
        return self.model.predict(torch.from_numpy(x)).numpy()

    @torch.no_grad()
    def evaluate(self, x: np.ndarray, y: np.ndarray, metric: str) -> dict[str, float]:
        self.model.eval()
        out = self.model(torch.from_numpy(x))
        pred = self.model.acts[-1](out) if self.model.logits_out else out
        return {metric: get_metric(metric)(pred.numpy(), y),
                "loss": float(self.loss_fn(out, torch.from_numpy(y)))}

    def parameters(self) -> dict[str, np.ndarray]:
        return {k: v.detach().numpy().copy() for k, v in self.model.named_parameters()}

    def state(self) -> dict[str, np.ndarray]:
        """The model's buffers (running statistics) from its state_dict: everything in it but the parameters."""
        params = dict(self.model.named_parameters())
        return {k: v.detach().numpy().copy() for k, v in self.model.state_dict().items() if k not in params}

    def export_onnx(self, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
        """torch.onnx.export of the predicting model (output activation applied), rewritten to the
        opset-21 / IR-10 file onnxruntime reads, with our metadata."""
        import onnx

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # a time length left open (0) is exported as a dynamic dimension, traced on 3 steps
        example = torch.zeros(2, *(n or 3 for n in self.network.input_shape), dtype=self.dtype)
        dims = {0: torch.export.Dim("batch"), **{i + 1: torch.export.Dim("time", min=1)
                                                 for i, n in enumerate(self.network.input_shape) if n == 0}}
        self.model.eval()
        quiet = logging.getLogger("torch.onnx")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # it warns that torchvision's ops are not registered: we use none
        with warnings.catch_warnings(), contextlib.ExitStack() as undo:
            undo.callback(quiet.setLevel, level)
            warnings.simplefilter("ignore")
            with contextlib.redirect_stdout(io.StringIO()):  # the exporter narrates its steps
                torch.onnx.export(_Predicting(self.model), (example,), str(path), input_names=["input"],
                                  output_names=["output"], dynamic_shapes=(dims,),
                                  opset_version=21, dynamo=True, external_data=False)
        model = onnx.load_model(str(path))
        model.ir_version = min(model.ir_version, 10)
        _open_time_in_outputs(model, self.network)
        onnx.helper.set_model_props(model, {"exporter": f"torch.onnx {torch.__version__}", **(metadata or {})})
        onnx.checker.check_model(model, full_check=True)
        onnx.save_model(model, str(path))
        return path


def _open_time_in_outputs(model, network: NetworkSpec) -> None:
    """An output per time step of a sequence left open is declared with the input's symbolic time,
    not the length the exporter traced (3): onnxruntime warns on every run whose length differs. The
    exporter's shape hints of the tensors inside (value_info, optional) carry the traced length too,
    and onnxruntime infers the output's shape from them: they go, and it infers them from the input."""
    out_shape = network.shapes[-1]
    if len(out_shape) != 2 or out_shape[0] != 0:
        return
    del model.graph.value_info[:]
    time = model.graph.input[0].type.tensor_type.shape.dim[1].dim_param or "time"
    for output in model.graph.output:
        dims = output.type.tensor_type.shape.dim
        if len(dims) == 3:
            dims[1].Clear()
            dims[1].dim_param = time


class _Predicting(nn.Module):
    """The model as a user deploys it: inputs in, output activations out."""

    def __init__(self, mlp: Net) -> None:
        super().__init__()
        self.mlp = mlp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp.predict(x)
