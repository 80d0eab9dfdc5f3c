"""Interop with Keras 3 and PyTorch (both optional: nothing here imports them until asked to).

* Keras: :func:`from_keras` builds a seqcore ``Sequential`` from a Keras model object or a ``.keras``
  file (read with h5py, no Keras needed); :func:`to_keras` builds a ``keras.Sequential`` (needs Keras);
  :func:`save_keras` writes a ``.keras`` file without Keras; :func:`keras_config` is its config.
* PyTorch: :func:`from_torch` builds the seqcore layer matching an ``nn.Linear``, ``nn.LSTM``,
  ``nn.GRU``, ``nn.Conv1d`` (or an ``nn.Sequential`` of such modules); :func:`to_torch` goes back;
  :func:`torch_state_dict` and :func:`load_torch_state_dict` exchange weights in PyTorch's layout as
  NumPy arrays, without torch.
* ONNX: :func:`to_onnx` (and ``model.export(path, format="onnx")``) writes an ONNX graph that ONNX
  Runtime runs (needs the ``onnx`` package, the extra ``seqcore[onnx]``).

Every converter verifies itself on a probe batch when the other framework is importable and attaches
a :class:`ConversionReport` as ``.conversion_report`` to what it returns (``save_keras`` returns it).
"""

from __future__ import annotations

from ._common import ConversionReport
from .keras import SUPPORTED_LAYERS, from_keras, keras_config, save_keras, to_keras
from .onnx import to_onnx
from .torch import from_torch, load_torch_state_dict, to_torch, torch_state_dict

__all__ = [
    "SUPPORTED_LAYERS",
    "ConversionReport",
    "from_keras",
    "from_torch",
    "keras_config",
    "load_torch_state_dict",
    "save_keras",
    "to_keras",
    "to_onnx",
    "to_torch",
    "torch_state_dict",
]
