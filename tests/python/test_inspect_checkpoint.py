"""trackpoint.inspect_checkpoint against the output of TensorFlow 2.21's own
print_tensors_in_checkpoint_file on the same fixtures (the golden strings
below were printed by tensorflow.python.tools.inspect_checkpoint, numpy 2.4)."""

import numpy as np
import pytest

from trackpoint.inspect_checkpoint import print_tensors_in_checkpoint_file

from conftest import FIXTURES

pytestmark = pytest.mark.skipif(
    np.lib.NumpyVersion(np.__version__) < "2.0.0",
    reason="the goldens use numpy 2's array printing",
)


def _output(capsys, *args, **kwargs):
    print_tensors_in_checkpoint_file(*args, **kwargs)
    return capsys.readouterr().out


def test_all_tensors_matches_tensorflow(capsys):
    pytest.importorskip("ml_dtypes")
    assert _output(capsys, str(FIXTURES / "byte_identity/bundle"), None, True) == BYTE_IDENTITY_ALL


def test_partitioned_tensors_are_assembled(capsys):
    out = _output(capsys, str(FIXTURES / "tf1_partitioned/model.ckpt-7"), None, True)
    assert out == PARTITIONED_ALL


def test_debug_listing_matches_tensorflow(capsys):
    assert _output(capsys, str(FIXTURES / "worked_example/tv"), None, False) == TV_DEBUG
    assert _output(capsys, str(FIXTURES / "dtypes_savev2/ckpt"), "", False) == SAVEV2_DEBUG


def test_one_tensor(capsys):
    out = _output(
        capsys, str(FIXTURES / "worked_example/tv"), "v/.ATTRIBUTES/VARIABLE_VALUE", False
    )
    assert out == TV_ONE


def test_missing_tensor_is_printed_not_raised(capsys):
    assert _output(capsys, str(FIXTURES / "worked_example/tv"), "nope", False) == TV_MISSING


def test_names_only_with_count_exclude_pattern(capsys):
    out = _output(
        capsys,
        str(FIXTURES / "objects/keras_adam/ckpt"),
        None,
        False,
        all_tensor_names=True,
        count_exclude_pattern="optim",
    )
    assert out == KERAS_NAMES_EXCLUDING


def test_directory_means_latest_checkpoint(capsys):
    out = _output(capsys, str(FIXTURES / "manager"), "step/.ATTRIBUTES/VARIABLE_VALUE", False)
    assert out.splitlines()[:2] == ["tensor: step/.ATTRIBUTES/VARIABLE_VALUE (int64) []", "50"]


def test_missing_checkpoint_prints_the_error(capsys, tmp_path):
    out = _output(capsys, str(tmp_path / "nope"), None, True)
    assert "nope.index" in out and "Total number of params" not in out


def test_index_file_name_gets_a_hint(capsys):
    out = _output(capsys, str(FIXTURES / "worked_example/tv.index"), None, True)
    assert "prefix" in out and str(FIXTURES / "worked_example/tv") + ")" in out


def test_unconvertible_tensor_is_reported_per_tensor(capsys, monkeypatch):
    # What happens to bfloat16 without ml_dtypes: reading it raises
    # UnimplementedError, and TensorFlow's message is printed in its place.
    from trackpoint import errors
    from trackpoint.reader import CheckpointReader

    real = CheckpointReader.get_tensor

    def get_tensor(self, name):
        if name == "bf16":
            raise errors.UnimplementedError("bfloat16 tensors need the ml_dtypes package")
        return real(self, name)

    monkeypatch.setattr(CheckpointReader, "get_tensor", get_tensor)
    out = _output(capsys, str(FIXTURES / "byte_identity/bundle"), None, True)
    assert "tensor: bf16 (bfloat16) [2, 2]\n<not convertible to a numpy dtype>\n" in out
    assert out.endswith("# Total number of params: 50\n")


# ---- goldens: TensorFlow 2.21's output ------------------------------------------------------

BYTE_IDENTITY_ALL = (
    "tensor: a (int8) [2]\n"
    "[-128  127]\n"
    "tensor: bf16 (bfloat16) [2, 2]\n"
    "[[1 -0.5]\n"
    " [3 256]]\n"
    "tensor: big (uint64) [3]\n"
    "[                   0 18446744073709551615  9223372036854775809]\n"
    "tensor: blob (string) [3]\n"
    "[b'\\x00\\x01\\x02\\x03\\x04\\x05\\x06\\x07\\x08\\t\\n\\x0b\\x0c\\r\\x0e\\x0f\\x10\\x11\\x12\\x13\\x14\\x15\\x16\\x17\\x18\\x19\\x1a\\x1b\\x1c\\x1d\\x1e\\x1f !\"#$%&\\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\\x7f\\x80\\x81\\x82\\x83\\x84\\x85\\x86\\x87\\x88\\x89\\x8a\\x8b\\x8c\\x8d\\x8e\\x8f\\x90\\x91\\x92\\x93\\x94\\x95\\x96\\x97\\x98\\x99\\x9a\\x9b\\x9c\\x9d\\x9e\\x9f\\xa0\\xa1\\xa2\\xa3\\xa4\\xa5\\xa6\\xa7\\xa8\\xa9\\xaa\\xab\\xac\\xad\\xae\\xaf\\xb0\\xb1\\xb2\\xb3\\xb4\\xb5\\xb6\\xb7\\xb8\\xb9\\xba\\xbb\\xbc\\xbd\\xbe\\xbf\\xc0\\xc1\\xc2\\xc3\\xc4\\xc5\\xc6\\xc7\\xc8\\xc9\\xca\\xcb\\xcc\\xcd\\xce\\xcf\\xd0\\xd1\\xd2\\xd3\\xd4\\xd5\\xd6\\xd7\\xd8\\xd9\\xda\\xdb\\xdc\\xdd\\xde\\xdf\\xe0\\xe1\\xe2\\xe3\\xe4\\xe5\\xe6\\xe7\\xe8\\xe9\\xea\\xeb\\xec\\xed\\xee\\xef\\xf0\\xf1\\xf2\\xf3\\xf4\\xf5\\xf6\\xf7\\xf8\\xf9\\xfa\\xfb\\xfc\\xfd\\xfe\\xff'\n"
    " b'\\x00\\x00\\x00'\n"
    " b'long string chunk 000; long string chunk 001; long string chunk 002; long string chunk 003; long string chunk 004; long string chunk 005; long string chunk 006; long string chunk 007; long string chunk 008; long string chunk 009; long string chunk 010; long string chunk 011; long string chunk 012; long string chunk 013; long string chunk 014; ']\n"
    "tensor: counts (int32) [5]\n"
    "[          0          -1  2147483647 -2147483648           5]\n"
    "tensor: dir/sub.name (float32) [1]\n"
    "[42.]\n"
    "tensor: empty (float32) [0, 3]\n"
    "[]\n"
    "tensor: empty_strings (string) [0]\n"
    "[]\n"
    "tensor: global_step (int64) []\n"
    "1234567\n"
    "tensor: half (float16) [3]\n"
    "[ 1.00e+00 -2.50e+00  6.55e+04]\n"
    "tensor: i16 (int16) [3]\n"
    "[-32768      0  32767]\n"
    "tensor: labels (string) [3]\n"
    "[b'cat' b''\n"
    " b'h\\xc3\\xa9llo w\\xc3\\xb6rld \\xe2\\x9c\\x93 \\xe6\\x97\\xa5\\xe6\\x9c\\xac\\xe8\\xaa\\x9e']\n"
    "tensor: mask (bool) [4]\n"
    "[ True False False  True]\n"
    "tensor: name (string) []\n"
    "b'trackpoint'\n"
    "tensor: pixels (uint8) [2, 2, 2]\n"
    "[[[  0  30]\n"
    "  [ 60  90]]\n"
    "\n"
    " [[120 150]\n"
    "  [180 210]]]\n"
    "tensor: scale (float64) []\n"
    "-0.125\n"
    "tensor: weights (float32) [2, 3]\n"
    "[[-0.5  -0.25  0.  ]\n"
    " [ 0.25  0.5   0.75]]\n"
    "tensor: z (complex64) [2]\n"
    "[ 1. +2.j   -0.5-0.25j]\n"
    "# Total number of params: 50\n"
)

TV_DEBUG = (
    "_CHECKPOINTABLE_OBJECT_GRAPH (DT_STRING) []\n"
    "s/.ATTRIBUTES/VARIABLE_VALUE (DT_STRING) [2]\n"
    "v/.ATTRIBUTES/VARIABLE_VALUE (DT_FLOAT) [2]\n"
    "\n"
    "# Total number of params: 5\n"
)

TV_ONE = (
    "tensor: v/.ATTRIBUTES/VARIABLE_VALUE (float32) [2]\n[1. 2.]\n# Total number of params: 5\n"
)

TV_MISSING = "Tensor nope not found in checkpoint\n"

PARTITIONED_ALL = (
    "tensor: dense/bias (float32) [2]\n"
    "[ 0.5 -0.5]\n"
    "tensor: dense/kernel (float32) [4, 2]\n"
    "[[0.   0.25]\n"
    " [0.5  0.75]\n"
    " [1.   1.25]\n"
    " [1.5  1.75]]\n"
    "tensor: emb (float32) [10, 4]\n"
    "[[-1.  -0.5  0.   0.5]\n"
    " [ 1.   1.5  2.   2.5]\n"
    " [ 3.   3.5  4.   4.5]\n"
    " [ 5.   5.5  6.   6.5]\n"
    " [ 7.   7.5  8.   8.5]\n"
    " [ 9.   9.5 10.  10.5]\n"
    " [11.  11.5 12.  12.5]\n"
    " [13.  13.5 14.  14.5]\n"
    " [15.  15.5 16.  16.5]\n"
    " [17.  17.5 18.  18.5]]\n"
    "tensor: global_step (int64) []\n"
    "7\n"
    "# Total number of params: 51\n"
)

SAVEV2_DEBUG = (
    "bfloat16 (DT_BFLOAT16) [2,3]\n"
    "bool (DT_BOOL) [2,3]\n"
    "complex128 (DT_COMPLEX128) [2,3]\n"
    "complex64 (DT_COMPLEX64) [2,3]\n"
    "float16 (DT_HALF) [2,3]\n"
    "float32 (DT_FLOAT) [2,3]\n"
    "float4_e2m1fn (DT_FLOAT4_E2M1FN) [2,3]\n"
    "float64 (DT_DOUBLE) [2,3]\n"
    "float8_e4m3b11fnuz (DT_FLOAT8_E4M3B11FNUZ) [2,3]\n"
    "float8_e4m3fn (DT_FLOAT8_E4M3FN) [2,3]\n"
    "float8_e4m3fnuz (DT_FLOAT8_E4M3FNUZ) [2,3]\n"
    "float8_e5m2 (DT_FLOAT8_E5M2) [2,3]\n"
    "float8_e5m2fnuz (DT_FLOAT8_E5M2FNUZ) [2,3]\n"
    "int16 (DT_INT16) [2,3]\n"
    "int2 (DT_INT2) [2,3]\n"
    "int32 (DT_INT32) [2,3]\n"
    "int4 (DT_INT4) [2,3]\n"
    "int64 (DT_INT64) [2,3]\n"
    "int8 (DT_INT8) [2,3]\n"
    "qint16 (DT_QINT16) [2,3]\n"
    "qint32 (DT_QINT32) [2,3]\n"
    "qint8 (DT_QINT8) [2,3]\n"
    "quint16 (DT_QUINT16) [2,3]\n"
    "quint8 (DT_QUINT8) [2,3]\n"
    "string (DT_STRING) [2,3]\n"
    "strings (DT_STRING) [6]\n"
    "uint16 (DT_UINT16) [2,3]\n"
    "uint2 (DT_UINT2) [2,3]\n"
    "uint32 (DT_UINT32) [2,3]\n"
    "uint4 (DT_UINT4) [2,3]\n"
    "uint64 (DT_UINT64) [2,3]\n"
    "uint8 (DT_UINT8) [2,3]\n"
    "\n"
    "# Total number of params: 192\n"
)

KERAS_NAMES_EXCLUDING = (
    "tensor: _CHECKPOINTABLE_OBJECT_GRAPH (string) []\n"
    "tensor: optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE (int64) []\n"
    "tensor: optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE (float32) []\n"
    "tensor: optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE (float32) [3, 2]\n"
    "tensor: optimizer/_trainable_variables/1/.ATTRIBUTES/VARIABLE_VALUE (float32) [2]\n"
    "tensor: optimizer/_variables/2/.ATTRIBUTES/VARIABLE_VALUE (float32) [3, 2]\n"
    "tensor: optimizer/_variables/3/.ATTRIBUTES/VARIABLE_VALUE (float32) [3, 2]\n"
    "tensor: optimizer/_variables/4/.ATTRIBUTES/VARIABLE_VALUE (float32) [2]\n"
    "tensor: optimizer/_variables/5/.ATTRIBUTES/VARIABLE_VALUE (float32) [2]\n"
    "# Excluding 8 tensors (26 params) that match optim when counting.\n"
    "# Total number of params: 1\n"
)
