"""The dtype table: TensorFlow numbers and names to numpy dtypes."""

import numpy as np
import pytest

from trackpoint import dtypes, errors

ml_dtypes = pytest.importorskip("ml_dtypes")

# (enum, TensorFlow name, numpy dtype values come back as) for every storable type.
TABLE = [
    (1, "float32", np.float32), (2, "float64", np.float64), (3, "int32", np.int32),
    (4, "uint8", np.uint8), (5, "int16", np.int16), (6, "int8", np.int8),
    (7, "string", object), (8, "complex64", np.complex64), (9, "int64", np.int64),
    (10, "bool", np.bool_), (11, "qint8", np.int8), (12, "quint8", np.uint8),
    (13, "qint32", np.int32), (14, "bfloat16", ml_dtypes.bfloat16), (15, "qint16", np.int16),
    (16, "quint16", np.uint16), (17, "uint16", np.uint16), (18, "complex128", np.complex128),
    (19, "float16", np.float16), (22, "uint32", np.uint32), (23, "uint64", np.uint64),
    (24, "float8_e5m2", ml_dtypes.float8_e5m2), (25, "float8_e4m3fn", ml_dtypes.float8_e4m3fn),
    (26, "float8_e4m3fnuz", ml_dtypes.float8_e4m3fnuz),
    (27, "float8_e4m3b11fnuz", ml_dtypes.float8_e4m3b11fnuz),
    (28, "float8_e5m2fnuz", ml_dtypes.float8_e5m2fnuz), (29, "int4", ml_dtypes.int4),
    (30, "uint4", ml_dtypes.uint4), (31, "int2", ml_dtypes.int2), (32, "uint2", ml_dtypes.uint2),
    (33, "float4_e2m1fn", ml_dtypes.float4_e2m1fn),
]


@pytest.mark.parametrize("enum,name,np_dtype", TABLE)
def test_table(enum, name, np_dtype):
    dt = dtypes.as_dtype(enum)
    assert dt.name == name and dtypes.as_dtype(name) == dt
    assert dt.as_numpy_dtype == np.dtype(np_dtype)
    assert getattr(dtypes, name) == dt
    if not dt.is_quantized and name != "string":
        assert dtypes.as_dtype(np.dtype(np_dtype)) == dt
        assert dt == np_dtype


def test_numpy_strings_map_to_string_and_quantized_never_inferred():
    assert dtypes.as_dtype(np.array(["a"]).dtype) == "string"
    assert dtypes.as_dtype(np.array([b"a"]).dtype) == "string"
    assert dtypes.as_dtype(np.int8) == "int8"
    assert dtypes.qint8 != np.int8


def test_unknown_dtypes_are_value_errors():
    with pytest.raises(ValueError):
        dtypes.as_dtype(99)
    with pytest.raises(errors.InvalidArgumentError):
        dtypes.as_dtype(np.dtype("datetime64[s]"))
    with pytest.raises(NotImplementedError):
        _ = dtypes.as_dtype("variant").as_numpy_dtype
