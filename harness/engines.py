"""The contract both engines implement, and the registry that names them."""

from __future__ import annotations

# name -> "module:Class"; imported only when asked for, so that naming an engine never imports torch.
ENGINE_NAMES: dict[str, str] = {
    "scratch": "harness.scratch.engine:ScratchEngine",
    "torch": "harness.reference.engine:TorchEngine",
}
