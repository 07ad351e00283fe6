"""TensorFlow's behaviour as the CheckpointReader cases of
tensorflow/python/training/saver_test.py define it (CheckpointReaderTest,
which writes SaverDef.V1, and CheckpointReaderForV2Test, the same with V2),
tested on trackpoint.

The checkpoints are the ones testDebugString writes (v0 = [[1, 2, 3], [4, 5,
6]], v1 = [[[1], [2]], [[3], [4]], [[5], [6]]], float32, a TF1 Saver in graph
mode), written by TensorFlow 2.21 in both formats:
tests/fixtures/tf1_v1format/ckpt_for_debug_string (V1) and
tests/fixtures/tf1_v1format/debug_string_v2 (V2), by
tests/fixtures/generate_tf_state.py. expected.json holds what TF's reader
returned for them, its debug_string and its error messages.

Cases that cannot apply: none. (TF builds the checkpoint in a session; here
TF-written files stand in for that step.)
"""

import json
import pathlib

import numpy as np
import pytest

import trackpoint
from trackpoint.errors import NotFoundError

FIXTURE = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "tf1_v1format"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text())["checkpoints"]
FORMATS = {"V1": "ckpt_for_debug_string", "V2": "debug_string_v2"}


@pytest.fixture(params=sorted(FORMATS))
def checkpoint(request):
    name = FORMATS[request.param]
    return FIXTURE / name, EXPECTED[name]


def test_debug_string(checkpoint):
    # testDebugString
    prefix, expected = checkpoint
    reader = trackpoint.load_checkpoint(prefix)
    assert reader.has_tensor("v0")
    assert reader.has_tensor("v1")
    debug_string = reader.debug_string()
    assert isinstance(debug_string, bytes)
    assert b"v0 (DT_FLOAT) [2,3]" in debug_string
    assert b"v1 (DT_FLOAT) [3,2,1]" in debug_string
    # The same lines as TF's (V1: TF prints them in its hash order, we sort).
    assert sorted(debug_string.splitlines()) == sorted(
        expected["debug_string"].encode().splitlines())
    var_map = reader.get_variable_to_shape_map()
    assert var_map["v0"] == [2, 3]
    assert var_map["v1"] == [3, 2, 1]
    v0 = reader.get_tensor("v0")
    v1 = reader.get_tensor("v1")
    np.testing.assert_array_equal(v0, np.array([[1, 2, 3], [4, 5, 6]], np.float32))
    np.testing.assert_array_equal(v1, np.array([[[1], [2]], [[3], [4]], [[5], [6]]], np.float32))
    assert v0.dtype == np.float32 and v1.dtype == np.float32
    with pytest.raises(NotFoundError, match="v3 not found in checkpoint") as info:
        reader.get_tensor("v3")
    assert str(prefix) in str(info.value)
    # TF's own message for the same call, which the match above also accepts.
    assert "v3 not found in checkpoint" in expected["errors"]["missing_key"]


def test_v2_debug_string_is_byte_identical():
    reader = trackpoint.load_checkpoint(FIXTURE / "debug_string_v2")
    assert reader.debug_string() == EXPECTED["debug_string_v2"]["debug_string"].encode()


def test_nonexistent_path():
    # testNonexistentPath
    with pytest.raises(NotFoundError, match="Unsuccessful TensorSliceReader") as info:
        trackpoint.CheckpointReader("non-existent")
    assert "non-existent" in str(info.value)
    with pytest.raises(NotFoundError, match="Unsuccessful TensorSliceReader"):
        trackpoint.load_checkpoint("non-existent")
    tf_message = EXPECTED["debug_string_v2"]["errors"]["missing_checkpoint"]
    assert tf_message.startswith("Unsuccessful TensorSliceReader constructor: Failed to find "
                                 "any matching files for")
