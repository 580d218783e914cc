"""The fully connected layer: z = x Wᵀ + b, its backward beside it."""

from __future__ import annotations

import numpy as np


class Dense:
    """A linear map with weight W of shape (out, in) and bias b of shape (out,), as torch's nn.Linear.

    forward caches its input x; backward takes dL/dz and fills dL/dW = (dL/dz)ᵀ x and
    dL/db = Σ_rows dL/dz, and returns dL/dx = (dL/dz) W unless the caller needs none
    (the first layer: its input is data).
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray) -> None:
        self.weight, self.bias = weight, bias
        self.grad_weight = np.zeros_like(weight)
        self.grad_bias = np.zeros_like(bias)
        self.x: np.ndarray | None = None

    def forward(self, x: np.ndarray, cache: bool = True) -> np.ndarray:
        if cache:
            self.x = x
        z = x @ self.weight.T
        z += self.bias
        return z

    def backward(self, grad_z: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        np.matmul(grad_z.T, self.x, out=self.grad_weight)
        np.sum(grad_z, axis=0, out=self.grad_bias)
        return grad_z @ self.weight if input_grad else None
