"""The trainer (compile, fit, evaluate, predict), its data adapters, callback list, progress bar and
truncated BPTT."""

from .trainer import NotCompiledError, Trainer

__all__ = ["NotCompiledError", "Trainer"]
