"""HDF5 files of the pipeline: atomic writes, deterministic layout, clear read errors.

Conventions (every stage output follows them):
- the first axis of every dataset is the sample axis;
- chunks of about 1 MiB along that axis (capped at N), gzip with the shuffle filter;
- root attributes hold stable metadata, each JSON-encoded so lists and dicts round-trip;
- a ``/provenance`` group holds volatile metadata (time, git sha, host), so two runs on the same
  inputs give files whose every other byte is identical;
- files are written under a temporary name in the target folder and renamed into place, so a
  killed job never leaves a half-written output behind.
Large files are read back with ``read_chunks``: contiguous slices of many rows, so memory holds
one chunk whatever the file's size.
"""

import contextlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from cgankd.errors import CgankdInputError
from cgankd.formats import SPLIT, TAG_KEY, TASK_ATTRS, H5Kind

CHUNK_BYTES = 1 << 20  # ~1 MiB chunks along the sample axis: good for both gzip and random reads
GZIP_LEVEL = 4  # level 4 is within a few % of level 9's size at a fraction of the time
PROVENANCE_GROUP = "provenance"
# read_chunks: ~64 MiB per read. Large enough that per-call HDF5 overhead and the one storage
# chunk decompressed twice at each boundary (chunks are ~1 MiB) cost < 2 %; small enough that
# host, pinned and device copies of a chunk stay far below any machine's memory.
READ_CHUNK_BYTES = 64 << 20


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def chunk_rows(shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Rows per chunk so that one chunk holds about CHUNK_BYTES, at least 1, at most N."""
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * np.dtype(dtype).itemsize
    return int(max(1, min(shape[0], CHUNK_BYTES // max(1, row_bytes))))


def _encode_attrs(target: h5py.AttributeManager, attrs: Mapping[str, Any]) -> None:
    for key in sorted(attrs):
        target[key] = json.dumps(attrs[key], sort_keys=True, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store attribute value of type {type(value).__name__}")


def decode_attrs(source: h5py.AttributeManager) -> dict[str, Any]:
    out = {}
    for key, raw in source.items():
        text = raw.decode() if isinstance(raw, bytes) else raw
        try:
            out[key] = json.loads(text) if isinstance(text, str) else text
        except json.JSONDecodeError:
            out[key] = text  # a foreign file's plain string attribute
    return out


def _create(group: h5py.Group, name: str, data: np.ndarray | None = None, *,
            shape: tuple[int, ...] | None = None, dtype: Any = None, resizable: bool = False
            ) -> h5py.Dataset:
    shape = tuple(data.shape) if data is not None else tuple(shape)
    dtype = np.dtype(data.dtype if data is not None else dtype)
    rows = chunk_rows(shape if shape[0] > 0 else (1, *shape[1:]), dtype)
    if resizable:
        rows = chunk_rows((1 << 30, *shape[1:]), dtype)  # final N is unknown: size by bytes only
    return group.create_dataset(
        name, data=data, shape=shape, dtype=dtype,
        chunks=(rows, *shape[1:]) if len(shape) else None,
        # an empty fixed-size dataset cannot hold a 1-row chunk: let it grow along axis 0
        maxshape=(None, *shape[1:]) if resizable or (len(shape) and shape[0] == 0) else None,
        compression="gzip", compression_opts=GZIP_LEVEL, shuffle=True,
        track_times=False,  # timestamps in object headers would break byte-identical reruns
    )


def _declared(path: str | os.PathLike, kind: H5Kind | None, names: Sequence[str],
              attrs: Mapping[str, Any] | None) -> dict[str, Any]:
    """``attrs`` stamped with ``kind``'s tag, after checking the writer gives exactly the
    declared columns (a writer that drifts from cgankd.formats fails in its tests)."""
    attrs = dict(attrs or {})
    if kind is None:
        return attrs
    declared = sorted(c.name for c in kind.columns)
    if sorted(names) != declared:
        raise ValueError(f"{path}: a {kind.name} file has columns {declared}, got {sorted(names)}")
    attrs[TAG_KEY] = kind.tag
    return attrs


def write_h5(path: str | os.PathLike, arrays: Mapping[str, np.ndarray],
             attrs: Mapping[str, Any] | None = None,
             provenance: Mapping[str, Any] | None = None, kind: H5Kind | None = None) -> None:
    """Write ``arrays`` (name -> array, sample axis first) and ``attrs`` to ``path`` atomically;
    a declared ``kind`` (cgankd.formats) checks the columns and stamps the tag."""
    attrs = _declared(path, kind, list(arrays), attrs)
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{path}: datasets disagree on the sample count: {lengths}")
    with atomic_path(path) as tmp, h5py.File(tmp, "w", track_order=False) as f:
        for name in sorted(arrays):
            _create(f, name, np.ascontiguousarray(arrays[name]))
        _encode_attrs(f.attrs, attrs)
        if provenance is not None:
            _encode_attrs(f.create_group(PROVENANCE_GROUP).attrs, provenance)


class StreamingH5Writer:
    """Append batches to resizable datasets, then rename the file into place on ``close``.

    For stages whose output does not fit in memory (generation, subsampling): the writer
    holds one batch at a time. Used as a context manager, an exception discards the file.
    A declared ``kind`` (cgankd.formats) checks the columns and stamps the tag.
    """

    def __init__(self, path: str | os.PathLike, specs: Mapping[str, tuple[tuple[int, ...], Any]],
                 attrs: Mapping[str, Any] | None = None,
                 provenance: Mapping[str, Any] | None = None, kind: H5Kind | None = None):
        attrs = _declared(path, kind, list(specs), attrs)
        self._atomic = atomic_path(path)
        self._tmp = self._atomic.__enter__()
        self.path = Path(path)
        self._file = h5py.File(self._tmp, "w", track_order=False)
        self._datasets = {name: _create(self._file, name, shape=(0, *tail), dtype=dtype,
                                        resizable=True)
                          for name, (tail, dtype) in sorted(specs.items())}
        self.attrs = attrs
        self._provenance = provenance
        self.rows = 0

    def append(self, **batch: np.ndarray) -> None:
        if set(batch) != set(self._datasets):
            raise ValueError(f"{self.path}: append needs exactly {sorted(self._datasets)}")
        n = {len(v) for v in batch.values()}
        if len(n) != 1:
            raise ValueError(f"{self.path}: batch arrays disagree on length")
        n = n.pop()
        for name, ds in self._datasets.items():
            ds.resize(self.rows + n, axis=0)
            ds[self.rows:self.rows + n] = batch[name]
        self.rows += n

    def close(self) -> None:
        _encode_attrs(self._file.attrs, self.attrs)
        if self._provenance is not None:
            _encode_attrs(self._file.create_group(PROVENANCE_GROUP).attrs, self._provenance)
        self._file.close()
        self._atomic.__exit__(None, None, None)

    def abort(self, exc: BaseException) -> None:
        self._file.close()
        with contextlib.suppress(BaseException):
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
        if self._tmp.exists():
            self._tmp.unlink()

    def __enter__(self) -> "StreamingH5Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.close()
        else:
            self.abort(exc)


def open_h5(path: str | os.PathLike) -> h5py.File:
    """Open an HDF5 file for reading, turning every failure into one clear line."""
    path = Path(path)
    if not path.exists():
        raise CgankdInputError(f"{path}: file not found")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise CgankdInputError(f"{path}: not a readable HDF5 file (corrupt or truncated?): "
                               f"{str(err).splitlines()[0]}") from None


def get_dataset(f: h5py.File, key: str) -> h5py.Dataset:
    """Dataset ``key`` of ``f``, naming file and key if it is missing or not a dataset."""
    if not isinstance(f.get(key), h5py.Dataset):
        raise CgankdInputError(f"{f.filename}: missing dataset {key!r}; found {sorted(f.keys())}")
    return f[key]


def _unreadable(f: h5py.File, key: str, err: Exception) -> CgankdInputError:
    return CgankdInputError(f"{f.filename}: dataset {key!r} is unreadable (corrupt or "
                            f"truncated?): {str(err).splitlines()[0]}")


def read_array(f: h5py.File, key: str) -> np.ndarray:
    """Read dataset ``key`` whole, naming file and key if it is missing or unreadable."""
    ds = get_dataset(f, key)
    try:
        return ds[()]
    except (OSError, ValueError) as err:
        raise _unreadable(f, key, err) from None


def sample_count(f: h5py.File, keys: Sequence[str]) -> int:
    """The common length of datasets ``keys`` (their first axis); one clear line otherwise."""
    shapes = {key: get_dataset(f, key).shape for key in keys}
    for key, shape in shapes.items():
        if not shape:
            raise CgankdInputError(f"{f.filename}: dataset {key!r} is a scalar, not one value "
                                   f"per sample")
    lengths = {key: shape[0] for key, shape in shapes.items()}
    if len(set(lengths.values())) > 1:
        raise CgankdInputError(f"{f.filename}: datasets disagree on the sample count: {lengths}")
    return next(iter(lengths.values()), 0)


def _torch_dtype(f: h5py.File, key: str, dtype: np.dtype) -> torch.dtype:
    try:
        return torch.from_numpy(np.empty(0, dtype)).dtype
    except TypeError:
        raise CgankdInputError(f"{f.filename}: dataset {key!r} has dtype {dtype}, which has no "
                               f"torch equivalent") from None


def read_chunks(path: str | os.PathLike, keys: Sequence[str], *, rows: int | None = None,
                multiple_of: int = 1, device: torch.device | str | None = None,
                non_blocking: bool = True) -> Iterator[tuple[range, dict[str, torch.Tensor]]]:
    """Yield (rows, {key: tensor}) for consecutive chunks of datasets ``keys``, in row order.

    Each dataset's chunk is one contiguous HDF5 slice read straight into its destination, never
    row by row. ``rows`` per chunk defaults to READ_CHUNK_BYTES worth of all ``keys``; it is
    rounded up to a multiple of ``multiple_of`` (a caller's batch size, so batches never
    straddle chunks). With a CUDA ``device`` the chunk lands in pinned host memory and its copy
    is queued with ``non_blocking``: a caller that does not synchronise before asking for the
    next chunk has the host read it while the device still works on this one. Otherwise the
    tensors are plain CPU tensors. Every chunk is a fresh buffer: a caller may keep one while
    asking for the next.
    """
    device = torch.device(device if device is not None else "cpu")
    pinned = device.type == "cuda"
    with open_h5(path) as f:
        n = sample_count(f, keys)
        datasets = {key: get_dataset(f, key) for key in keys}
        dtypes = {key: _torch_dtype(f, key, ds.dtype) for key, ds in datasets.items()}
        if rows is None:
            row_bytes = sum(int(np.prod(ds.shape[1:], dtype=np.int64)) * ds.dtype.itemsize
                            for ds in datasets.values())
            rows = READ_CHUNK_BYTES // max(1, row_bytes)
        if multiple_of < 1:
            raise ValueError(f"read_chunks: multiple_of must be >= 1, got {multiple_of}")
        rows = max(1, -(-int(rows) // multiple_of)) * multiple_of
        for start in range(0, n, rows):
            stop = min(n, start + rows)
            chunk = {}
            for key, ds in datasets.items():
                host = torch.empty((stop - start, *ds.shape[1:]), dtype=dtypes[key],
                                   pin_memory=pinned)
                try:
                    ds.read_direct(host.numpy(), np.s_[start:stop])
                except (OSError, ValueError, TypeError) as err:
                    raise _unreadable(f, key, err) from None
                chunk[key] = host if device.type == "cpu" \
                    else host.to(device, non_blocking=non_blocking)
            yield range(start, stop), chunk


@dataclass
class Split:
    """One split of a dataset as the pipeline stores it: images, labels and stable ids."""

    images: np.ndarray  # uint8 (N, C, H, W)
    labels: np.ndarray  # int64 class ids or float32 raw regression targets
    index: np.ndarray  # int64 stable sample ids
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return self.attrs["task"]

    def __len__(self) -> int:
        return len(self.labels)


def check_h5(f: h5py.File, kind: H5Kind, columns: Sequence[str] | None = None,
             attrs: Sequence[str] | None = None) -> dict[str, Any]:
    """The decoded root attributes of ``f`` after checking it holds ``kind``'s ``columns``
    (default: all of them; each present, of a declared dtype and rank, all of one length)
    and root attributes: ``attrs`` if given (a reader's needs), else the kind's and the task's
    (``TASK_ATTRS``); CgankdInputError (one line naming file and key) otherwise."""
    names = [c.name for c in kind.columns] if columns is None else list(columns)
    for name in names:
        col, ds = kind.column(name), get_dataset(f, name)
        if ds.dtype.name not in col.dtypes or ds.ndim != 1 + col.tail:
            raise CgankdInputError(f"{f.filename}: dataset {name!r} must be {col.meaning}, "
                                   f"{' or '.join(col.dtypes)} with {1 + col.tail} axes; got "
                                   f"{ds.dtype} {ds.shape}")
    sample_count(f, names)
    held = decode_attrs(f.attrs)
    required = kind.attrs if attrs is None else tuple(attrs)
    _require_attrs(f, kind, held, required)
    if "task" in required and held["task"] not in TASK_ATTRS:
        raise CgankdInputError(f"{f.filename}: root attribute 'task' is {held['task']!r}, not "
                               f"one of {sorted(TASK_ATTRS)}")
    if attrs is None:
        _require_attrs(f, kind, held, TASK_ATTRS[held["task"]])
    return held


def _require_attrs(f: h5py.File, kind: H5Kind, held: Mapping[str, Any],
                   required: Sequence[str]) -> None:
    for key in required:
        if key not in held:
            raise CgankdInputError(f"{f.filename}: missing root attribute {key!r} (a "
                                   f"{kind.title} file holds {sorted(required)})")


def read_split(path: str | os.PathLike) -> Split:
    """A split file written by ``prepare_data``, or any file holding the split's columns (a
    fake set, a generated set): ``images``, ``labels``, ``index`` and the task's attributes."""
    with open_h5(path) as f:
        attrs = check_h5(f, SPLIT, attrs=("task",))  # the task's attributes: its readers'
        images, labels, index = (read_array(f, c.name) for c in SPLIT.columns)
    return Split(images=images, labels=labels, index=index, attrs=attrs)


def write_split(path: str | os.PathLike, split: Split,
                provenance: Mapping[str, Any] | None = None) -> None:
    write_h5(path, {"images": split.images, "labels": split.labels, "index": split.index},
             split.attrs, provenance, kind=SPLIT)
