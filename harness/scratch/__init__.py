"""The from-scratch engine: a feed-forward network in NumPy alone (never torch, never mlflow)."""

from harness.scratch.network import Network

__all__ = ["Network"]
