"""Kept for scripts that import initializers from here; they live in `harness.init`, shared by every engine."""

from harness.init import INITIALIZERS, initial_parameters

__all__ = ["INITIALIZERS", "initial_parameters"]
