"""The fully connected layer: z = x Wᵀ + b, its backward beside it."""

from __future__ import annotations

import numpy as np

from harness.scratch.activations import ones


class Dense:
    """A linear map with weight W (out, in) and bias b (out,), as torch's nn.Linear.

    The arrays are views the network owns (parameters and gradients each live in one flat
    buffer). backward takes dL/dz and the input x the forward saw (the network keeps it),
    fills dL/dW = (dL/dz)ᵀ x and dL/db = Σ_rows dL/dz, and writes dL/dx = (dL/dz) W into
    `input_grad` when asked (not for the first layer: its input is data).

    The products use `np.dot`, not `np.matmul`: the same BLAS call and the same bits, but
    about a microsecond less of dispatch per call, which is most of a tiny layer's time.
    `np.dot` writes into `out` only when it is C-contiguous and of the result's dtype, as
    the network's buffers are.
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray, grad_weight: np.ndarray, grad_bias: np.ndarray) -> None:
        self.weight, self.bias = weight, bias
        self.grad_weight, self.grad_bias = grad_weight, grad_bias

    def forward(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        z = np.dot(x, self.weight.T, out=out)
        z += self.bias
        return z

    def backward(self, grad_z: np.ndarray, x: np.ndarray, input_grad: np.ndarray | None = None) -> np.ndarray | None:
        np.dot(grad_z.T, x, out=self.grad_weight)
        np.dot(ones(len(grad_z), grad_z.dtype), grad_z, out=self.grad_bias)  # Σ_rows, 2-4x faster than add.reduce
        if input_grad is None:
            return None
        return np.dot(grad_z, self.weight, out=input_grad)
