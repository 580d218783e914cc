"""The from-scratch engine in NumPy alone (never torch, never mlflow): a network of the layer table's
kinds in a chain (dense, convolutional, pooling, recurrent), one scratch layer per kind, with its
losses, optimizers and ONNX and checkpoint files."""

from harness.scratch.network import Network

__all__ = ["Network"]
