"""nn-harness: a from-scratch NumPy network benchmarked against PyTorch, tracked in MLflow."""

__version__ = "0.1.0"
