"""Interoperability with TensorFlow, both ways.

Committed fixtures (tests/fixtures/objects, written by TensorFlow 2.21)
check without TensorFlow that trackpoint writes the same bytes for the same
structure and restores what TensorFlow wrote. When a Python with TensorFlow
is available (TRACKPOINT_TF_PYTHON, or tensorflow importable here), the live
tests have TensorFlow itself restore what trackpoint wrote.
"""

import json
import os
import subprocess
import tempfile

import numpy as np
import pytest

import trackpoint

from conftest import FIXTURES, TF_PYTHON, needs_tf
from structures import build, decode_record

OBJECTS = FIXTURES / "objects"


def _checkpoints():
    out = []
    for manifest_path in sorted(OBJECTS.glob("*/manifest.json")):
        manifest = json.loads(manifest_path.read_text())
        for entry in manifest["checkpoints"]:
            out.append(pytest.param(manifest_path.parent, entry,
                                    id=f"{manifest_path.parent.name}/{entry['prefix']}"))
    return out


CHECKPOINTS = _checkpoints()


def _all_values(ckpt):
    """key -> value of every tensor a checkpoint file holds (object graph excluded)."""
    reader = trackpoint.load_checkpoint(ckpt)
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if k != "_CHECKPOINTABLE_OBJECT_GRAPH"}


@pytest.mark.parametrize("directory,entry", CHECKPOINTS)
def test_writes_tensorflows_bytes(tmp_path, directory, entry):
    ckpt, _ = build(entry["root"])
    ours = ckpt.write(tmp_path / entry["prefix"])
    for suffix in (".index", ".data-00000-of-00001"):
        theirs = (directory / (entry["prefix"] + suffix)).read_bytes()
        assert (tmp_path / (entry["prefix"] + suffix)).read_bytes() == theirs, suffix
    assert ours == str(tmp_path / entry["prefix"])


def test_save_twice_gives_tensorflows_files_and_state(tmp_path):
    manifest = json.loads((OBJECTS / "saved" / "manifest.json").read_text())
    first, second = manifest["checkpoints"]
    ckpt, _ = build(first["root"])
    ckpt.save_counter.assign(0)
    assert ckpt.save(tmp_path / "saved") == str(tmp_path / "saved-1")
    # Load the second save's values into the same objects, then save again.
    values, _ = build(second["root"])
    values.save_counter.assign(1)
    values.write(tmp_path / "scratch")
    ckpt.read(tmp_path / "scratch").assert_consumed()
    assert ckpt.save(tmp_path / "saved") == str(tmp_path / "saved-2")
    for name in ("saved-1.index", "saved-1.data-00000-of-00001", "saved-2.index",
                 "saved-2.data-00000-of-00001", "checkpoint"):
        assert (tmp_path / name).read_bytes() == (OBJECTS / "saved" / name).read_bytes(), name


@pytest.mark.parametrize("directory,entry", CHECKPOINTS)
def test_restores_what_tensorflow_wrote(directory, entry):
    ckpt, counter = build(entry["root"], with_values=False)
    prefix = directory / entry["prefix"]
    status = ckpt.restore(prefix) if counter is not None else ckpt.read(prefix)
    status.assert_consumed()
    # Every value TensorFlow stored is now in the objects: writing them back
    # reproduces every tensor.
    expected = _all_values(prefix)
    with tempfile.TemporaryDirectory() as d:
        again = ckpt.write(os.path.join(d, "again"))
        actual = _all_values(again)
    assert sorted(actual) == sorted(expected)
    for key in expected:
        a, e = np.asarray(actual[key]), np.asarray(expected[key])
        assert a.dtype == e.dtype and a.shape == e.shape, key
        assert (a.tolist() == e.tolist()) if e.dtype == object else (a.tobytes() == e.tobytes()), key


# ---- live TensorFlow --------------------------------------------------------------------


def _tf_restore(prefix, structure_file):
    out = subprocess.run(
        [TF_PYTHON, str(FIXTURES / "tf_interop.py"), "restore", str(prefix), str(structure_file)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    return json.loads(out.stdout)


@needs_tf
@pytest.mark.parametrize("directory,entry", [
    c for c in CHECKPOINTS if c.id != "double_escape/ckpt"  # TF cannot restore its own
])
def test_tensorflow_restores_what_trackpoint_wrote(tmp_path, directory, entry):
    ckpt, _ = build(entry["root"])
    prefix = ckpt.write(tmp_path / entry["prefix"])
    structure = tmp_path / "structure.json"
    structure.write_text(json.dumps(entry))
    report = _tf_restore(prefix, structure)
    assert report["error"] is None, report["error"]
    assert report["assert_consumed"]["passed"], report["assert_consumed"]["error"]
    expected = _all_values(prefix)
    compared = set()
    for path, record in report["values"].items():
        key = next(k for k in (path, path + "/.ATTRIBUTES/VARIABLE_VALUE",
                               path + "/.ATTRIBUTES/py_state") if k in expected)
        assert np.asarray(decode_record(record)).tolist() == np.asarray(expected[key]).tolist(), key
        compared.add(key)
    assert compared == set(expected)
