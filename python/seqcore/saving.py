"""Saving and loading models: one file per model, weights in the safetensors format.

``save_model(model, path)`` (``model.save(path)``) writes a zip archive (``.seqcore`` by convention)
holding

- ``config.json``: ``"format": "seqcore"``, an integer ``"format_version"``, the seqcore version,
  the model's architecture (``Sequential.get_config()``: every layer through ``layers.serialize``),
  and, when the model is compiled, the compile config (optimizer, loss, metrics, loss weight) and
  the optimizer's counters (iterations, current learning rate, gradient-accumulation count);
- ``model.safetensors``: every weight, named ``"<layer name>/<weight name>"`` (nested layers add a
  level: ``"time_distributed/conv1d/kernel"``, ``"bidirectional/forward/kernel"``,
  ``"bidirectional/backward/recurrent_kernel"``). It is a plain safetensors file: unzip it and
  any safetensors reader opens it;
- ``optimizer.safetensors`` (when the model is compiled and ``include_optimizer=True``): the
  optimizer's slot arrays, named ``"<slot>/<weight name>"`` (``"momentum/dense/kernel"``,
  ``"velocity/lstm/bias"``, ``"accumulated_gradient/..."``).

``load_model(path)`` rebuilds the model from that, recompiles it and restores the optimizer state,
so predictions are bit-identical and training continues exactly as it would have without the
save/load. ``save_weights``/``load_weights`` write and read a bare safetensors file of the weights.

Loading never executes code: a file holds only JSON and raw little-endian arrays; layer, optimizer,
loss and metric classes are looked up by name among seqcore's own classes. Every offset and size in
a file is checked against the file's real size before anything is allocated, so a damaged or
crafted file gives a ``ValueError`` naming the path and the problem, never a huge allocation or an
out-of-bounds read.

Not saved, as in Keras: the carried states of stateful RNN layers (call ``reset_states`` or run a
warm-up batch after loading), the random generators of Dropout layers, and callbacks' state.
Writes are atomic: the file appears complete under its name, or an existing file is left untouched.
"""

from __future__ import annotations

import errno
import inspect
import json
import math
import os
import secrets
import struct
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import numpy as np

from . import losses as losses_mod
from . import metrics as metrics_mod
from . import optimizers as optimizers_mod
from .layers.base import Layer, Weight
from .layers.wrappers import Bidirectional, TimeDistributed
from .models import Functional, Model, Sequential

__all__ = [
    "FORMAT_VERSION",
    "load_model",
    "load_safetensors",
    "load_safetensors_metadata",
    "load_weights",
    "save_model",
    "save_safetensors",
    "save_weights",
    "weight_names",
]

#: Version of the container layout. Readers accept files up to their own version; bump it when a
#: change would make older seqcore misread a new file.
FORMAT_VERSION = 1
_FORMAT = "seqcore"
_CONFIG = "config.json"
_WEIGHTS = "model.safetensors"
_OPTIMIZER = "optimizer.safetensors"

# The reference implementation's limit on the JSON header of a safetensors file.
_MAX_HEADER = 100_000_000
_MAX_CONFIG = 64 * 1024 * 1024
# DEFLATE cannot expand data by more than ~1032x: a member declaring more is lying about its size.
_MAX_DEFLATE_RATIO = 1100
# Fixed member timestamps: saving the same model twice gives identical bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)

# safetensors dtype codes numpy can represent. BF16 and the F8 types are valid safetensors but have
# no numpy dtype; they are refused by name.
_DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype("<u1"),
    "I8": np.dtype("<i1"),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "F16": np.dtype("<f2"),
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "F32": np.dtype("<f4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "F64": np.dtype("<f8"),
    "C64": np.dtype("<c8"),
}
_NO_NUMPY_DTYPE = {"BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4"}
_CODES = {(dt.kind, dt.itemsize): code for code, dt in _DTYPES.items()}
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# What zipfile raises on a damaged archive (NotImplementedError: a garbled "version needed" field).
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, struct.error)
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")


# ----- paths and atomic writes -----------------------------------------------------------------
def _path(path: Any, who: str) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{who}: path must be a str or os.PathLike; received {type(path).__name__}.")
    p = os.fspath(path)
    if not isinstance(p, str):  # a bytes PathLike
        p = os.fsdecode(p)
    return p


def _existing_file(path: Any, who: str) -> str:
    p = _path(path, who)
    if not os.path.exists(p):
        raise FileNotFoundError(errno.ENOENT, f"{who}: no such file", p)
    if os.path.isdir(p):
        raise IsADirectoryError(errno.EISDIR, f"{who}: expected a file, found a directory", p)
    return p


@contextmanager
def _atomic_write(path: str, who: str, overwrite: bool = True) -> Iterator[Any]:
    """Yields a binary file that becomes ``path`` only once fully written and fsynced: a temporary
    file in the same directory (so ``os.replace`` is an atomic rename on one file system) replaces
    the target at the end. On any exception the temporary file is removed and an existing file at
    ``path`` is untouched."""
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, f"{who}: the target is a directory", path)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(errno.EEXIST, f"{who}: file exists and overwrite=False", path)
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    while True:
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            # 0o666 filtered by the umask, like a file opened normally (mkstemp would force 0o600).
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:  # pragma: no cover - 48 random bits colliding
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable (POSIX); not possible or needed everywhere.
    with suppress(OSError, AttributeError):
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


# ----- safetensors -----------------------------------------------------------------------------
def _prepare_tensors(tensors: Mapping[str, Any], who: str) -> list[tuple[str, str, np.ndarray]]:
    out = []
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"{who}: tensor names must be str; received {name!r}.")
        if name == "__metadata__":
            raise ValueError(f"{who}: '__metadata__' is reserved by the safetensors format; rename that tensor.")
        arr = np.asarray(value)
        code = _CODES.get((arr.dtype.kind, arr.dtype.itemsize))
        if code is None:
            raise TypeError(
                f"{who}: tensor {name!r} has dtype {arr.dtype}, which safetensors cannot store here; expected "
                f"bool, (u)int8-64, float16/32/64 or complex64."
            )
        out.append((name, code, np.asarray(arr, dtype=_DTYPES[code], order="C")))  # keeps 0-d arrays 0-d
    return out


def _header_bytes(entries: list[tuple[str, str, np.ndarray]], metadata: Mapping[str, str] | None, who: str) -> bytes:
    header: dict[str, Any] = {}
    if metadata:
        bad = [(k, v) for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise TypeError(f"{who}: safetensors metadata maps str to str; received {bad[0][0]!r}: {bad[0][1]!r}.")
        header["__metadata__"] = dict(metadata)
    offset = 0
    for name, code, arr in entries:
        header[name] = {"dtype": code, "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    # Pad with spaces to a multiple of 8 (as the reference writer does) so the data is 8-byte aligned.
    return raw + b" " * (-len(raw) % 8)


def _write_safetensors(f: Any, entries: list[tuple[str, str, np.ndarray]], header: bytes) -> None:
    f.write(struct.pack("<Q", len(header)))
    f.write(header)
    for _, _, arr in entries:
        _write_array(f, arr)


def _write_array(f: Any, arr: np.ndarray) -> None:
    if arr.nbytes:
        f.write(arr.reshape(-1).view(np.uint8).data)  # no copy of the data


def _safetensors_size(entries: list[tuple[str, str, np.ndarray]], header: bytes) -> int:
    return 8 + len(header) + sum(arr.nbytes for _, _, arr in entries)


def save_safetensors(path: Any, tensors: Mapping[str, Any], metadata: Mapping[str, str] | None = None) -> None:
    """Writes ``tensors`` (name -> array) to ``path`` in the safetensors format, atomically.
    ``metadata`` is an optional str -> str map stored in the header's ``__metadata__``."""
    p = _path(path, "save_safetensors")
    entries = _prepare_tensors(tensors, "save_safetensors")
    header = _header_bytes(entries, metadata, "save_safetensors")
    with _atomic_write(p, "save_safetensors") as f:
        _write_safetensors(f, entries, header)


class _TensorInfo:
    __slots__ = ("name", "dtype", "shape", "begin", "end")

    def __init__(self, name: str, dtype: np.dtype[Any], shape: tuple[int, ...], begin: int, end: int):
        self.name, self.dtype, self.shape, self.begin, self.end = name, dtype, shape, begin, end


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for k, v in pairs:
        if k in d:
            raise ValueError(f"the key {k!r} appears twice")
        d[k] = v
    return d


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _parse_header(f: Any, size: int, where: str) -> tuple[list[_TensorInfo], dict[str, str]]:
    """Reads and validates the header of the safetensors stream ``f`` (at its start) of ``size``
    bytes. Returns the tensors sorted by offset and the metadata; ``f`` is left at the data."""

    def bad(msg: str) -> ValueError:
        return ValueError(f"{where} is not a valid safetensors file: {msg}.")

    if size < 8:
        raise bad(f"it has {size} bytes, fewer than the 8-byte header length")
    (n,) = struct.unpack("<Q", _read_exact(f, 8, where))
    if n > _MAX_HEADER:
        raise bad(f"the header declares {n} bytes, more than the {_MAX_HEADER}-byte limit")
    if 8 + n > size:
        raise bad(f"the header declares {n} bytes but only {size - 8} follow (truncated file?)")
    raw = _read_exact(f, n, where)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise bad("the header is not UTF-8 text") from None
    if not text.startswith("{"):
        raise bad("the header is not a JSON object")
    try:
        header = json.loads(text, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as e:
        raise bad(f"the header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise bad("the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise bad("__metadata__ must map strings to strings")
    infos = []
    for name, entry in header.items():
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise bad(f"tensor {name!r} must have exactly the keys dtype, shape and data_offsets")
        code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if code not in _DTYPES:
            why = " (a valid safetensors dtype, but numpy has no such type)" if code in _NO_NUMPY_DTYPE else ""
            raise bad(f"tensor {name!r} has dtype {code!r}{why}; expected one of {sorted(_DTYPES)}")
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            raise bad(f"tensor {name!r} has shape {shape!r}; expected a list of non-negative ints")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets):
            raise bad(f"tensor {name!r} has data_offsets {offsets!r}; expected [begin, end]")
        begin, end = offsets
        dtype = _DTYPES[code]
        # Python ints: no overflow, whatever the file claims.
        if not 0 <= begin <= end or end - begin != math.prod(shape) * dtype.itemsize:
            raise bad(
                f"tensor {name!r} ({code}, shape {shape}) needs {math.prod(shape) * dtype.itemsize} bytes but "
                f"data_offsets {offsets} span {end - begin}"
            )
        infos.append(_TensorInfo(name, dtype, tuple(shape), begin, end))
    infos.sort(key=lambda t: (t.begin, t.end))
    # Contiguous from 0 to exactly the end of the file: no overlap, no gap, nothing out of range.
    pos = 0
    for t in infos:
        if t.begin != pos:
            raise bad(f"tensor {t.name!r} starts at data offset {t.begin}, expected {pos} (overlap or gap)")
        pos = t.end
    data = size - 8 - n
    if pos != data:
        what = "truncated file?" if pos > data else "trailing bytes"
        raise bad(f"the tensors cover {pos} data bytes but the file holds {data} ({what})")
    return infos, {str(k): v for k, v in metadata.items()}


def _read_exact(f: Any, n: int, where: str) -> bytes:
    buf = bytearray(n)
    _readinto_exact(f, buf, where)
    return bytes(buf)


def _readinto_exact(f: Any, buf: bytearray, where: str) -> None:
    view, got = memoryview(buf), 0
    while got < len(buf):
        k = f.readinto(view[got:])
        if not k:
            raise ValueError(f"{where} is truncated: expected {len(buf) - got} more bytes.")
        got += k


def _read_tensors(f: Any, size: int, where: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    infos, metadata = _parse_header(f, size, where)
    out: dict[str, np.ndarray] = {}
    for t in infos:
        # The sizes were checked against the real size above, so this allocation is bounded by it.
        buf = bytearray(t.end - t.begin)
        _readinto_exact(f, buf, where)
        arr = np.frombuffer(buf, dtype=t.dtype).reshape(t.shape)
        if t.dtype.kind == "b" and buf and np.frombuffer(buf, np.uint8).max() > 1:
            raise ValueError(f"{where}: BOOL tensor {t.name!r} holds bytes other than 0 and 1.")
        out[t.name] = arr.astype(t.dtype.newbyteorder("="), copy=False)  # native order (no copy on x86/ARM)
    return out, metadata


def _open_safetensors(path: str, who: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    where = repr(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        f.seek(0)
        if head.startswith(_ZIP_MAGICS):
            raise ValueError(
                f"{who}: {where} is a zip archive (a seqcore model file?), not a safetensors file; read it with "
                f"seqcore.saving.load_model or model.load_weights."
            )
        if head.startswith(_HDF5_MAGIC):
            raise ValueError(f"{who}: {_hdf5_message(where)}")
        try:
            return _read_tensors(f, size, where)
        except ValueError as e:
            raise ValueError(f"{who}: {e}") from None


def load_safetensors(path: Any) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file, by name, in file order, as writable native-order arrays.
    The file is validated strictly first (see the module docstring)."""
    p = _existing_file(path, "load_safetensors")
    return _open_safetensors(p, "load_safetensors")[0]


def load_safetensors_metadata(path: Any) -> dict[str, str]:
    """The ``__metadata__`` map of a safetensors file (empty when it has none)."""
    p = _existing_file(path, "load_safetensors_metadata")
    with open(p, "rb") as f:
        try:
            return _parse_header(f, os.fstat(f.fileno()).st_size, repr(p))[1]
        except ValueError as e:
            raise ValueError(f"load_safetensors_metadata: {e}") from None


# ----- weight names ----------------------------------------------------------------------------
def _layer_weights(layer: Layer, path: str, out: list[tuple[str, Weight]]) -> None:
    if isinstance(layer, Model):
        for sub in layer.layers:
            _layer_weights(sub, f"{path}/{sub.name}", out)
    elif isinstance(layer, TimeDistributed):
        _layer_weights(layer.layer, f"{path}/{layer.layer.name}", out)
    elif isinstance(layer, Bidirectional):
        # By role, not by the inner layers' names: unique and stable whatever they are called.
        _layer_weights(layer.forward_layer, f"{path}/forward", out)
        _layer_weights(layer.backward_layer, f"{path}/backward", out)
    else:
        out.extend((f"{path}/{w.name}", w) for w in layer.weights)


def _named_weights(model: Model, who: str) -> list[tuple[str, Weight]]:
    """Every weight of ``model`` with its stable name, in ``model.weights`` order."""
    out: list[tuple[str, Weight]] = []
    for layer in model.layers:
        _layer_weights(layer, layer.name, out)
    seen: dict[str, Weight] = {}
    for name, w in out:
        if name in seen:
            raise ValueError(
                f"{who}: two weights of model {model.name!r} would both be saved as {name!r}: layer names must be "
                f"unique within a model. Rename one of the layers (name=...)."
            )
        seen[name] = w
    if sorted(map(id, seen.values())) != sorted(map(id, model.weights)):  # a layer kind the walk does not know
        raise ValueError(f"{who}: could not name every weight of model {model.name!r} (unsupported nested layer).")
    return out


def weight_names(model: Model) -> list[str]:
    """The names the weights of ``model`` are saved under, in ``model.weights`` order."""
    return [name for name, _ in _named_weights(model, "weight_names")]


# ----- config (de)serialization ----------------------------------------------------------------
def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(
        f"save_model: cannot store {type(o).__name__} {o!r} in config.json; a config may hold only numbers, "
        f"strings, booleans, None, lists and dicts (custom callables cannot be saved)."
    )


def _init_params(klass: type) -> list[str]:
    """The named constructor arguments ``klass`` itself declares (not those of its bases)."""
    init = klass.__dict__.get("__init__")
    if init is None:
        return []
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in inspect.signature(init).parameters.values() if p.name != "self" and p.kind in kinds]


def _object_config(obj: Any) -> dict[str, Any]:
    """The constructor arguments of ``obj``: ``get_config()`` where the class has one, completed by
    attributes named like the arguments of subclasses that did not extend ``get_config`` (their
    arguments would otherwise be lost); attributes alone when there is no ``get_config``. Arguments
    ``get_config`` leaves out on purpose (derived values) are not read back from attributes."""
    mro = type(obj).__mro__
    owner = next((k for k in mro if "get_config" in k.__dict__), None)
    cfg: dict[str, Any] = dict(obj.get_config()) if owner is not None else {}
    for klass in mro:
        if klass is owner:
            break
        for name in _init_params(klass):
            if name not in cfg and hasattr(obj, name):
                cfg[name] = getattr(obj, name)
    return cfg


def _serialize_object(obj: Any, module: Any) -> dict[str, Any]:
    """A loss or metric as ``{"class_name", "config"}`` (see ``_object_config``). A class outside
    seqcore's module, or one whose required arguments cannot be recovered as JSON (a wrapped
    function), gets ``"config": None``: it can only be restored by compiling again by hand."""
    cls = type(obj)
    custom = {"class_name": cls.__name__, "module": cls.__module__, "config": None}
    if getattr(module, cls.__name__, None) is not cls:
        return custom
    cfg = _object_config(obj)
    if _required_params(cls) - set(cfg):
        return custom
    try:
        cfg = json.loads(json.dumps(cfg, default=_json_default))
    except (TypeError, ValueError):
        return custom
    return {"class_name": cls.__name__, "config": cfg}


def _required_params(cls: type) -> set[str]:
    init = cls.__init__  # type: ignore[misc]
    return {
        p.name
        for p in inspect.signature(init).parameters.values()
        if p.name != "self" and p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def _deserialize_object(spec: Any, module: Any, base: type, kind: str) -> Any:
    if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str):
        raise ValueError(f"the {kind} entry must be {{'class_name': ..., 'config': ...}}; received {spec!r}")
    name = spec["class_name"]
    cls = getattr(module, name, None)
    if not (isinstance(cls, type) and issubclass(cls, base)) or spec.get("config") is None:
        where = f" (from {spec['module']})" if isinstance(spec.get("module"), str) else ""
        raise ValueError(
            f"the model was compiled with the {kind} {name!r}{where}, which cannot be rebuilt from a file (only "
            f"seqcore's own {kind} classes with plain arguments can). Load with load_model(path, compile=False) and "
            f"compile it again"
        )
    cfg = spec["config"]
    if not isinstance(cfg, dict):
        raise ValueError(f"the {kind} config must be a dict; received {cfg!r}")
    from_config = getattr(cls, "from_config", None)
    return from_config(cfg) if callable(from_config) else cls(**cfg)


def _compile_config(model: Model) -> dict[str, Any] | None:
    if model.optimizer is None or model.loss is None:
        return None
    names = model.output_names
    if len(names) > 1:  # per output, by name
        losses = model._output_losses
        per: dict[str, dict[str, list[Any]]] = {"metrics": {}, "weighted_metrics": {}}
        for m, i, w in zip(model.compiled_metrics, model._metric_outputs, model._metric_weighted, strict=True):
            per["weighted_metrics" if w else "metrics"].setdefault(names[i], []).append(
                _serialize_object(m, metrics_mod)
            )
        return {
            "optimizer": optimizers_mod.serialize(model.optimizer),
            "loss": {n: _serialize_object(lf, losses_mod) for n, lf in zip(names, losses, strict=True) if lf},
            "metrics": per["metrics"],
            "weighted_metrics": per["weighted_metrics"],
            "loss_weights": dict(zip(names, model._loss_weights, strict=True)),
        }
    pairs = list(zip(model.compiled_metrics, model._weighted_flags(), strict=True))
    return {
        "optimizer": optimizers_mod.serialize(model.optimizer),
        "loss": _serialize_object(model.loss, losses_mod),
        "metrics": [_serialize_object(m, metrics_mod) for m, w in pairs if not w],
        "weighted_metrics": [_serialize_object(m, metrics_mod) for m, w in pairs if w],
        "loss_weights": getattr(model, "loss_weight", 1.0),
    }


# ----- archives --------------------------------------------------------------------------------
def _hdf5_message(where: str) -> str:
    return (
        f"{where} is an HDF5 file (a Keras .h5 / .weights.h5 file?), which seqcore does not read. Rebuild the "
        f"model with seqcore layers and copy the weights with model.set_weights(keras_model.get_weights())."
    )


def _keras_message(where: str) -> str:
    return (
        f"{where} looks like a Keras .keras archive, not a seqcore model file; seqcore cannot load Keras files. "
        f"Rebuild the model with seqcore layers and copy the weights with "
        f"model.set_weights(keras_model.get_weights())."
    )


def _diagnose_not_zip(path: str, where: str, error: BaseException) -> str:
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        f.seek(0)
        if size == 0:
            return f"{where} is empty (0 bytes)."
        if head.startswith(_HDF5_MAGIC):
            return _hdf5_message(where)
        if head[:4] == b"PK\x03\x04":
            return f"{where} is a damaged or truncated zip archive ({error})."
        with suppress(ValueError):
            _parse_header(f, size, where)
            return (
                f"{where} is a weights-only safetensors file, not a model file: build the model and call "
                f"model.load_weights(path)."
            )
    return f"{where} is not a seqcore model file (not a zip archive: it starts with {head!r})."


def _member_stream_size(zf: zipfile.ZipFile, name: str, where: str, archive_size: int) -> int:
    """The uncompressed size of a member, once its entry is plausible: it must lie inside the
    archive, and its declared size must fit its compressed size (no stream is trusted for more)."""
    info = zf.getinfo(name)
    if not 0 <= info.header_offset <= archive_size - info.compress_size:
        raise ValueError(f"{where}: member {name} points outside the archive (damaged or truncated file).")
    if info.flag_bits & 0x1:
        raise ValueError(f"{where}: member {name} is encrypted; seqcore writes and reads plain archives.")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ValueError(f"{where}: member {name} uses zip compression method {info.compress_type}; expected stored "
                         f"or deflated.")  # fmt: skip
    if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
        raise ValueError(f"{where}: member {name} is stored but declares two different sizes (damaged file).")
    if info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + 1024:
        raise ValueError(f"{where}: member {name} declares an implausible size of {info.file_size} bytes (damaged).")
    return info.file_size


class _Archive:
    """An opened, validated seqcore model file."""

    def __init__(self, path: str, who: str):
        self.where = repr(path)
        self.size = os.path.getsize(path)
        try:
            self.zf = zipfile.ZipFile(path)
        except _ZIP_ERRORS as e:
            raise ValueError(f"{who}: {_diagnose_not_zip(path, self.where, e)}") from None
        try:
            self.config = self._read_config(who)
        except BaseException:
            self.zf.close()
            raise

    def close(self) -> None:
        self.zf.close()

    def _read_config(self, who: str) -> dict[str, Any]:
        where = self.where
        names = set(self.zf.namelist())
        if _CONFIG not in names:
            if "metadata.json" in names or "model.weights.h5" in names:
                raise ValueError(f"{who}: {_keras_message(where)}")
            members = ", ".join(sorted(names)[:5]) or "none"
            raise ValueError(
                f"{who}: {where} is a zip archive without {_CONFIG}, not a seqcore model file (members: {members})."
            )
        info = self.zf.getinfo(_CONFIG)
        if info.file_size > _MAX_CONFIG:
            raise ValueError(f"{who}: {where}: {_CONFIG} declares {info.file_size} bytes, more than the limit.")
        _member_stream_size(self.zf, _CONFIG, f"{who}: {where}", self.size)
        try:
            raw = self.zf.read(_CONFIG)
        except _ZIP_ERRORS as e:
            raise ValueError(f"{who}: {where} is damaged: cannot read {_CONFIG} ({e}).") from None
        try:
            config = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise ValueError(f"{who}: {where}: {_CONFIG} is not valid JSON ({e}).") from None
        if not isinstance(config, dict):
            raise ValueError(f"{who}: {where}: {_CONFIG} is not a JSON object.")
        fmt = config.get("format")
        if fmt != _FORMAT:
            if "keras_version" in config or ("module" in config and "class_name" in config) or "metadata.json" in names:
                raise ValueError(f"{who}: {_keras_message(where)}")
            raise ValueError(
                f"{who}: {where} is not a seqcore model file: {_CONFIG} has format {fmt!r}, expected {_FORMAT!r}."
            )
        version = config.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValueError(f"{who}: {where}: format_version must be a positive int; received {version!r}.")
        if version > FORMAT_VERSION:
            from . import __version__

            raise ValueError(
                f"{who}: {where} was written by seqcore format version {version} (seqcore "
                f"{config.get('seqcore_version', '?')}); this seqcore ({__version__}) reads up to format version "
                f"{FORMAT_VERSION}; upgrade seqcore (pip install -U seqcore)."
            )
        return config

    def tensors(self, member: str, who: str) -> dict[str, np.ndarray]:
        where = f"{self.where} (member {member})"
        if member not in self.zf.namelist():
            raise ValueError(f"{who}: {self.where} is damaged: the member {member} is missing.")
        size = _member_stream_size(self.zf, member, f"{who}: {self.where}", self.size)
        try:
            with self.zf.open(member) as f:
                tensors, _ = _read_tensors(f, size, where)
        except _ZIP_ERRORS as e:
            raise ValueError(f"{who}: {where} is damaged ({e}).") from None
        except ValueError as e:
            raise ValueError(f"{who}: {e}") from None
        return tensors


# ----- weights ---------------------------------------------------------------------------------
def _shape(s: Sequence[int]) -> str:
    return str(tuple(s))


def _assign_weights(model: Model, tensors: Mapping[str, np.ndarray], where: str, who: str) -> None:
    """Assigns ``tensors`` to the weights of ``model`` by name, all or nothing."""
    named = _named_weights(model, who)
    have = dict(named)
    missing = [n for n in have if n not in tensors]
    unexpected = [n for n in tensors if n not in have]
    wrong = [
        (n, w.shape, tensors[n])
        for n, w in named
        if n in tensors and (tensors[n].shape != w.shape or tensors[n].dtype.kind != "f")
    ]
    if missing or unexpected or wrong:

        def first(items: list[str]) -> str:
            more = f" (and {len(items) - 5} more)" if len(items) > 5 else ""
            return ", ".join(items[:5]) + more

        parts = []
        if missing:
            parts.append(f"{len(missing)} weight(s) of the model missing from the file: {first(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected weight(s) in the file: {first(unexpected)}")
        if wrong:
            diffs = [f"{n} expected float32 {_shape(s)}, received {t.dtype} {_shape(t.shape)}" for n, s, t in wrong]
            parts.append(f"{len(wrong)} with a different shape or dtype: {first(diffs)}")
        hint = ""
        if not model.built and unexpected:
            hint = " The model is not built: give it an Input(shape) (or call build) before loading weights."
        elif (
            missing
            and len(named) == len(tensors)
            and [w.shape for _, w in named] == [t.shape for t in tensors.values()]
        ):
            hint = (
                " The shapes match in order but the names differ: default layer names (dense, dense_1, ...) are "
                "numbered per process. Give the layers explicit names, or load by position with "
                "model.set_weights(list(seqcore.saving.load_safetensors(path).values()))."
            )
        raise ValueError(
            f"{who}: {where} does not match model {model.name!r}: {'; '.join(parts)}. No weight was changed.{hint}"
        )
    for name, w in named:
        w.value[...] = tensors[name]  # in place: optimizer slots are keyed by the Weight objects


def save_weights(model: Model, path: Any, overwrite: bool = True) -> None:
    """Writes the weights of ``model`` to ``path`` as a plain safetensors file (names as in
    ``weight_names(model)``, float32), atomically. Any safetensors reader can open it."""
    who = "save_weights"
    p = _path(path, who)
    _check_model(model, who)
    from . import __version__

    entries = _prepare_tensors({n: w.value for n, w in _named_weights(model, who)}, who)
    header = _header_bytes(entries, {"producer": f"seqcore {__version__}", "model": model.name}, who)
    with _atomic_write(p, who, overwrite) as f:
        _write_safetensors(f, entries, header)


def load_weights(model: Model, path: Any) -> None:
    """Loads weights by name from a safetensors file written by ``save_weights`` (or any tool using
    the same names), or from a full model file written by ``save_model``. Every name and shape is
    checked first: on any mismatch a ValueError lists them and no weight changes."""
    who = "load_weights"
    _check_model(model, who)
    p = _existing_file(path, who)
    with open(p, "rb") as f:
        is_zip = f.read(4) in _ZIP_MAGICS
    if is_zip:
        archive = _Archive(p, who)
        try:
            tensors = archive.tensors(_WEIGHTS, who)
        finally:
            archive.close()
    else:
        tensors, _ = _open_safetensors(p, who)
    _assign_weights(model, tensors, repr(p), who)


# ----- models ----------------------------------------------------------------------------------
def _check_model(model: Any, who: str) -> None:
    if not isinstance(model, (Sequential, Functional)):
        raise TypeError(
            f"{who}: expected a seqcore Sequential or Functional model; received {type(model).__name__}. Saving "
            f"subclassed models as one file is not supported yet: use model.save_weights(path) and rebuild the "
            f"model in code."
        )


def save_model(model: Model, path: Any, overwrite: bool = True, include_optimizer: bool = True) -> None:
    """Writes ``model`` to one file at ``path`` (any name; ``.seqcore`` by convention): architecture,
    weights, compile config and, with ``include_optimizer``, the optimizer state. Unbuilt models are
    saved too (without weights), as in Keras. The write is atomic. See the module docstring for the
    layout; stateful RNN states are not saved."""
    who = "save_model"
    _check_model(model, who)
    p = _path(path, who)
    from . import __version__

    named = _named_weights(model, who)
    config: dict[str, Any] = {
        "format": _FORMAT,
        "format_version": FORMAT_VERSION,
        "seqcore_version": __version__,
        "model": {"class_name": type(model).__name__, "config": model.get_config()},
        "trainable": model.trainable,
        "input_batch_size": (
            model._input_spec.batch_size if isinstance(model, Sequential) and model._input_spec is not None else None
        ),
        # A layer built without the model knowing its input shape is rebuilt from this on load
        # (a Functional graph rebuilds its layers by calling them again).
        "build_shapes": [
            list(layer.input_shape) if layer.built and layer.input_shape is not None else None for layer in model.layers
        ]
        if isinstance(model, Sequential)
        else [],
        "compile_config": _compile_config(model),
        "optimizer_state": None,
    }
    opt_entries: list[tuple[str, str, np.ndarray]] = []
    if include_optimizer and config["compile_config"] is not None:
        assert model.optimizer is not None
        state = model.optimizer.get_state([w for _, w in named])
        config["optimizer_state"] = {k: state[k] for k in ("iterations", "learning_rate", "accumulation_count")}
        arrays = {
            f"{slot}/{name}": a
            for slot, per_weight in state["slots"].items()
            for (name, _), a in zip(named, per_weight, strict=True)
            if a is not None
        }
        opt_entries = _prepare_tensors(arrays, who)
    # Everything that can fail on the model's content fails here, before a file is touched.
    config_bytes = json.dumps(config, indent=1, default=_json_default).encode("utf-8")
    entries = _prepare_tensors({n: w.value for n, w in named}, who)
    header = _header_bytes(entries, {"producer": f"seqcore {__version__}", "model": model.name}, who)
    members = [(_WEIGHTS, entries, header)]
    if config["optimizer_state"] is not None:
        members.append((_OPTIMIZER, opt_entries, _header_bytes(opt_entries, None, who)))
    with _atomic_write(p, who, overwrite) as f, zipfile.ZipFile(f, "w") as zf:
        info = zipfile.ZipInfo(_CONFIG, date_time=_ZIP_DATE)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        zf.writestr(info, config_bytes)
        for member, ents, head in members:
            # Stored, not deflated: float weights barely compress, and stored members read fastest.
            info = zipfile.ZipInfo(member, date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            big = _safetensors_size(ents, head) > zipfile.ZIP64_LIMIT  # streamed: zipfile must be told
            with zf.open(info, "w", force_zip64=big) as m:
                _write_safetensors(m, ents, head)


def load_model(path: Any, compile: bool = True) -> Model:
    """The model saved at ``path`` by ``save_model``/``model.save``: architecture and weights, and
    with ``compile=True`` (when it was compiled) the same optimizer, loss and metrics with the
    optimizer state restored, so training continues exactly where it stopped. Nothing in the file
    is executed; a damaged or foreign file raises a ValueError naming the path and the problem."""
    who = "load_model"
    p = _existing_file(path, who)
    archive = _Archive(p, who)
    try:
        return _load(archive, who, compile)
    finally:
        archive.close()


def _load(archive: _Archive, who: str, compile: bool) -> Model:
    where, config = archive.where, archive.config
    spec = config.get("model")
    if not isinstance(spec, dict) or spec.get("class_name") not in ("Sequential", "Functional"):
        got = spec.get("class_name") if isinstance(spec, dict) else spec
        raise ValueError(
            f"{who}: {where}: expected a Sequential or Functional model in {_CONFIG}; received {str(got)[:100]}."
        )
    try:
        kind = Sequential if spec.get("class_name") == "Sequential" else Functional
        model = kind.from_config(spec.get("config"))  # type: ignore[arg-type]
        shapes = config.get("build_shapes") or []
        if not isinstance(shapes, list):
            raise ValueError(f"build_shapes must be a list; received {shapes!r}")
        for layer, shape in zip(model.layers, shapes, strict=False):
            if shape is not None and not layer.built:
                layer._maybe_build(tuple(shape))
        bs = config.get("input_batch_size")
        if isinstance(model, Sequential) and model._input_spec is not None and _is_int(bs):
            model._input_spec.batch_size = bs
        model.trainable = bool(config.get("trainable", True))
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as e:
        raise ValueError(f"{who}: {where}: cannot rebuild the model from {_CONFIG}: {e}") from e
    _assign_weights(model, archive.tensors(_WEIGHTS, who), where, who)

    compile_config = config.get("compile_config")
    if not compile or compile_config is None:
        return model
    try:
        if not isinstance(compile_config, dict):
            raise ValueError(f"compile_config must be a dict; received {compile_config!r}")
        optimizer = optimizers_mod.deserialize(compile_config.get("optimizer"))  # type: ignore[arg-type]

        def loss_of(v: Any) -> Any:
            return _deserialize_object(v, losses_mod, losses_mod.Loss, "loss")

        def metrics_of(v: Any) -> Any:
            if isinstance(v, dict):  # per output, by name
                return {k: metrics_of(m) for k, m in v.items()}
            return [_deserialize_object(m, metrics_mod, metrics_mod.Metric, "metric") for m in v or []]

        raw_loss = compile_config.get("loss")
        per_output = isinstance(raw_loss, dict) and "class_name" not in raw_loss and "module" not in raw_loss
        loss = {k: loss_of(v) for k, v in raw_loss.items()} if per_output else loss_of(raw_loss)  # type: ignore[union-attr]
        metrics, weighted = (metrics_of(compile_config.get(k)) for k in ("metrics", "weighted_metrics"))
        model.compile(
            optimizer=optimizer,
            loss=loss,
            metrics=metrics,
            weighted_metrics=weighted,
            loss_weights=compile_config.get("loss_weights"),
        )
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{who}: {where}: cannot compile the model as saved: {e}") from e
    state = config.get("optimizer_state")
    if state is not None:
        _restore_optimizer(model, optimizer, state, archive, who)
    return model


def _restore_optimizer(
    model: Model, optimizer: optimizers_mod.Optimizer, state: Any, archive: _Archive, who: str
) -> None:
    where = archive.where
    if not isinstance(state, dict):
        raise ValueError(f"{who}: {where}: optimizer_state must be a dict; received {state!r}.")
    named = _named_weights(model, who)
    index = {name: i for i, (name, _) in enumerate(named)}
    slots: dict[str, list[np.ndarray | None]] = {}
    for key, arr in archive.tensors(_OPTIMIZER, who).items():
        slot, _, name = key.partition("/")
        if name not in index:
            raise ValueError(f"{who}: {where}: optimizer state {key!r} names no weight of the model (damaged file).")
        slots.setdefault(slot, [None] * len(named))[index[name]] = arr
    try:
        optimizer.set_state([w for _, w in named], {**state, "slots": slots})
    except (ValueError, TypeError) as e:
        raise ValueError(f"{who}: {where}: cannot restore the optimizer state: {e}") from e
