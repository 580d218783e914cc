"""The PyTorch twin of the scratch engine: the only package of the harness that imports torch."""

from harness.reference.engine import TorchEngine
from harness.reference.modules import MLP, Net

__all__ = ["MLP", "Net", "TorchEngine"]
