"""The containers the converter writes (sinks): TensorFlow checkpoints,
safetensors, ``.npz`` and PyTorch state_dict files.

A sink takes the specs of everything it will receive first, then the arrays,
then ``finish`` moves the result into place; ``abort`` (or an exception in
``finish``) leaves nothing behind.
"""

from __future__ import annotations

import os
import uuid
import zipfile

import numpy as np

from ..bundle import BundleWriter
from ..dtypes import TORCH_BIT_VIEWS, DType
from ..errors import AlreadyExistsError, InvalidArgumentError
from . import _safetensors
from ._sources import TORCH, import_torch

__all__ = ["Sink", "open_sink", "sink_supports"]


def sink_supports(fmt: str, dtype: DType) -> bool:
    """Whether a format can hold tensors of dtype (npz strings: see NpzSink)."""
    if fmt == "tf":
        return True
    if fmt == "safetensors":
        return _safetensors.code_for(dtype) is not None
    if fmt == "torch":
        return dtype.name in TORCH
    # npz: what numpy stores natively (.npy files cannot name ml_dtypes types).
    # Not strings: numpy's bytes arrays drop trailing NULs, object arrays need
    # pickle.
    return dtype.size > 0 and not _needs_ml_dtypes(dtype)


def _needs_ml_dtypes(dtype: DType) -> bool:
    return dtype.name == "bfloat16" or dtype.name.startswith(
        ("float8", "float4", "int4", "uint4", "int2", "uint2")
    )


class Sink:
    """Receives specs, then arrays; ``finish`` puts the result in place."""

    def __init__(self, path: str):
        self.path = path

    def begin(self, specs: dict) -> list:
        """Takes {key: (dtype, shape)}; returns the keys in the order to add them."""
        return list(specs)

    def add(self, key: str, dtype: DType, array: np.ndarray) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        pass


class CheckpointSink(Sink):
    def begin(self, specs: dict) -> list:
        self._writer = BundleWriter(self.path)
        return list(specs)

    def add(self, key: str, dtype: DType, array: np.ndarray) -> None:
        self._writer.add(key, array, dtype=dtype)

    def finish(self) -> None:
        self._writer.finish()

    def abort(self) -> None:
        self._writer = None  # deletes its temporary files


class SafetensorsSink(Sink):
    def begin(self, specs: dict) -> list:
        self._writer = _safetensors.Writer(self.path, specs)
        return list(self._writer.order)

    def add(self, key: str, dtype: DType, array: np.ndarray) -> None:
        self._writer.write(key, array)

    def finish(self) -> None:
        self._writer.finish()

    def abort(self) -> None:
        if getattr(self, "_writer", None) is not None:
            self._writer.abort()


def _temp_name(path: str) -> str:
    return f"{path}.tmp-{uuid.uuid4().hex[:12]}"


class NpzSink(Sink):
    """An uncompressed .npz (as ``np.savez`` writes), written member by member."""

    def begin(self, specs: dict) -> list:
        self._temp = _temp_name(self.path)
        self._zip = zipfile.ZipFile(self._temp, "w", zipfile.ZIP_STORED, allowZip64=True)
        return list(specs)

    def add(self, key: str, dtype: DType, array: np.ndarray) -> None:
        with self._zip.open(key + ".npy", "w", force_zip64=True) as f:
            np.lib.format.write_array(f, np.asarray(array, order="C"), allow_pickle=False)

    def finish(self) -> None:
        self._zip.close()
        _sync_and_rename(self._temp, self.path)

    def abort(self) -> None:
        if getattr(self, "_zip", None) is not None:
            self._zip.close()
            _remove(self._temp)


class TorchSink(Sink):
    """A state_dict of CPU tensors saved with ``torch.save``."""

    def begin(self, specs: dict) -> list:
        self._torch = import_torch()
        self._state: dict = {}
        return list(specs)

    def add(self, key: str, dtype: DType, array: np.ndarray) -> None:
        torch = self._torch
        name = TORCH[dtype.name]
        if dtype.name in TORCH_BIT_VIEWS:
            bits = np.asarray(array, order="C").view(TORCH_BIT_VIEWS[dtype.name])
            tensor = torch.from_numpy(bits.copy()).view(getattr(torch, name))
        else:
            tensor = torch.from_numpy(np.array(array, dtype=name, order="C", copy=True))
        self._state[key] = tensor

    def finish(self) -> None:
        temp = _temp_name(self.path)
        try:
            self._torch.save(self._state, temp)
            _sync_and_rename(temp, self.path)
        except BaseException:
            _remove(temp)
            raise


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _sync_and_rename(temp: str, path: str) -> None:
    with open(temp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(temp, path)


def open_sink(path: str, fmt: str, *, overwrite: bool = False) -> Sink:
    """A sink writing path in format fmt; AlreadyExistsError if path exists and
    not overwrite."""
    path = os.fspath(path)
    if fmt == "tf":
        if os.path.isdir(path):
            raise InvalidArgumentError(
                f"{path} is a directory; give a checkpoint prefix such as "
                f"{os.path.join(path, 'ckpt')}"
            )
        exists = os.path.exists(path + ".index")
    else:
        if os.path.isdir(path):
            raise InvalidArgumentError(f"{path} is a directory, not a file name")
        exists = os.path.exists(path)
    if exists and not overwrite:
        raise AlreadyExistsError(f"{path} already exists (pass --overwrite to replace it)")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        if fmt == "tf":
            pass  # BundleWriter creates it
        else:
            os.makedirs(parent, exist_ok=True)
    return {
        "tf": CheckpointSink,
        "safetensors": SafetensorsSink,
        "npz": NpzSink,
        "torch": TorchSink,
    }[fmt](path)
