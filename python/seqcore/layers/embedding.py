"""Keras's Embedding: integer indices -> rows of a trainable ``(input_dim, output_dim)`` table."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .. import constraints, initializers, regularizers
from .base import Layer, Shape, unused_input_grad
from .core import positive_int


class Embedding(Layer):
    """Keras 3's Embedding: input ``(batch, ...)`` of integer indices in ``[0, input_dim)``, output
    ``(batch, ..., output_dim)``. With ``mask_zero=True`` index 0 is padding: the mask goes to the
    recurrent layers as with Masking (seqcore takes post-padded sequences: ``pad_sequences(...,
    padding="post")``), and ``input_dim`` must count it (vocabulary size + 1).

    The lookup is a gather and its gradient a scatter-add into the table (rows of repeated indices
    accumulate), both single NumPy passes over the batch; the input gets no gradient (it is integer)."""

    propagates_mask = True
    _any_rank = True

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer: Any = "uniform",
        embeddings_regularizer: Any = None,
        embeddings_constraint: Any = None,
        mask_zero: bool = False,
        weights: Any = None,
        lora_rank: int | None = None,
        activity_regularizer: Any = None,
        **kwargs: Any,
    ):
        if kwargs.pop("input_length", None) is not None:
            # Keras 3 says the same and ignores it.
            warnings.warn(
                "Embedding: argument `input_length` is deprecated. Just remove it.", UserWarning, stacklevel=2
            )
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        who = f"Embedding {self.name!r}"
        if lora_rank is not None:
            raise ValueError(f"{who}: lora_rank is not supported; remove it (the full table is trained).")
        self.input_dim = positive_int(input_dim, who, "input_dim")
        self.output_dim = positive_int(output_dim, who, "output_dim")
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.mask_zero = bool(mask_zero)
        # Sequential turns this layer's mask (index != 0) into per-sample lengths, as for Masking.
        self.produces_mask = self.mask_zero
        self._initial_weights = weights
        self._ids: np.ndarray | None = None

    def build(self, input_shape: Shape) -> None:
        self.embeddings = self.add_weight(
            "embeddings",
            (self.input_dim, self.output_dim),
            self.embeddings_initializer,
            self.embeddings_regularizer,
            constraint=self.embeddings_constraint,
        )
        if self._initial_weights is not None:
            w = self._initial_weights
            self.set_weights(list(w) if isinstance(w, (list, tuple)) else [w])
            self._initial_weights = None

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape, self.output_dim)

    def compute_mask(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x) != 0

    def _indices(self, x: Any) -> np.ndarray:
        who = f"Embedding {self.name!r}"
        ids = np.asarray(x)
        if ids.dtype.kind == "f":
            # Models feed float32 batches; integer-valued floats are indices (exact below 2**24).
            if not np.isfinite(ids).all() or (ids != np.round(ids)).any():
                raise ValueError(f"{who}: the input must hold integer indices; received non-integer values.")
            ids = ids.astype(np.int64)
        elif ids.dtype.kind not in "iu":
            raise TypeError(f"{who}: the input must hold integer indices; received dtype {ids.dtype}.")
        if ids.size and (ids.min() < 0 or ids.max() >= self.input_dim):
            bad = int(ids.min()) if ids.min() < 0 else int(ids.max())
            raise ValueError(
                f"{who}: index {bad} is outside [0, input_dim={self.input_dim}). input_dim must exceed the largest "
                f"index: the vocabulary size, plus 1 when index 0 is padding (mask_zero=True)."
            )
        return ids

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        ids = self._indices(x)
        return np.take(self.embeddings.value, ids, axis=0), (ids if training else None)

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        if ctx is None:
            raise RuntimeError(f"Embedding {self.name!r}: backward without a training forward.")
        ids = ctx
        want = (*ids.shape, self.output_dim)
        if dy.shape != want:
            raise ValueError(
                f"Embedding {self.name!r}: expected an output gradient of shape {want}; received {dy.shape}."
            )
        grad = np.zeros_like(self.embeddings.value)
        np.add.at(grad, ids.reshape(-1), np.asarray(dy, np.float32).reshape(-1, self.output_dim))
        self.embeddings.add_grad(grad)
        return unused_input_grad(ids.shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
            "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
            "embeddings_constraint": constraints.serialize(self.embeddings_constraint),
            "mask_zero": self.mask_zero,
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
        }

    def __repr__(self) -> str:
        return f"<Embedding {self.name!r} {self.input_dim}x{self.output_dim}{' mask_zero' if self.mask_zero else ''}>"


__all__ = ["Embedding"]
