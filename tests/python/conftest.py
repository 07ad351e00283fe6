"""Shared helpers for the Python tests: the TensorFlow fixtures and their expected values."""

import base64
import gc
import importlib.util
import json
import os
import pathlib
import sys

import numpy as np
import pytest

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"


def _tf_python():
    """A Python with TensorFlow for the live interop checks: $TRACKPOINT_TF_PYTHON,
    or this one when tensorflow is importable; None otherwise."""
    explicit = os.environ.get("TRACKPOINT_TF_PYTHON")
    if explicit:
        return explicit
    return sys.executable if importlib.util.find_spec("tensorflow") is not None else None


TF_PYTHON = _tf_python()
needs_tf = pytest.mark.skipif(TF_PYTHON is None, reason="needs TensorFlow (set TRACKPOINT_TF_PYTHON)")

# Fixture directories written by tests/fixtures/generate.py.
FIXTURE_NAMES = [
    "dtypes", "dtypes_savev2", "tf1_partitioned", "multishard", "manager",
    "many_keys", "worked_example", "byte_identity",
]


def load_expected(name):
    """expected.json of a fixture directory."""
    return json.loads((FIXTURES / name / "expected.json").read_text())


def expected_value(spec, strings_key="base64"):
    """The numpy value TensorFlow's reader returned for one tensor of expected.json.

    A tensor record is {"dtype", "shape"} plus "hex" (the C-order bytes) or, for
    strings, a list of base64 elements under strings_key: "base64" in expected.json,
    "values" in objects/*/manifest.json (see structures.decode_record).
    """
    from trackpoint import dtypes

    shape = tuple(spec["shape"])
    if spec["dtype"] == "string":
        flat = [base64.b64decode(s) for s in spec[strings_key]]
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(shape)
    np_dtype = dtypes.as_dtype(spec["dtype"]).as_numpy_dtype
    return np.frombuffer(bytes.fromhex(spec.get("hex") or ""), dtype=np_dtype).reshape(shape)


def fixture_checkpoints():
    """(fixture name, prefix path, {key: spec}) for every checkpoint of every fixture."""
    out = []
    for name in FIXTURE_NAMES:
        for ckpt in load_expected(name)["checkpoints"].values():
            out.append((name, FIXTURES / name / ckpt["prefix"], ckpt["tensors"]))
    return out


@pytest.fixture
def fixtures_dir():
    return FIXTURES


@pytest.fixture
def no_cyclic_gc():
    """The cyclic garbage collector off for the test (after one collection),
    so that objects freed during it were freed by reference counting."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
