"""The low-level bundle writer and reader: byte identity with TensorFlow,
round trips of every dtype, and what corrupt or missing files produce."""

import base64
import json
import os
import shutil
import struct

import numpy as np
import pytest

import trackpoint
from trackpoint import dtypes, errors
from trackpoint.bundle import FULL_EXTENT, BundleReader, BundleWriter

from conftest import FIXTURES

ml_dtypes = pytest.importorskip("ml_dtypes")


def _manifest_value(t):
    """One tensor of byte_identity/manifest.json as the value to write."""
    if t["dtype"] == "string":
        flat = [base64.b64decode(v) for v in t["values"]]
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(tuple(t["shape"]))
    np_dtype = dtypes.as_dtype(t["dtype"]).as_numpy_dtype
    return np.frombuffer(bytes.fromhex(t["hex"]), dtype=np_dtype).reshape(tuple(t["shape"]))


def test_same_tensors_in_same_order_give_tensorflows_bytes(tmp_path):
    """byte_identity/ was written by tf.raw_ops.SaveV2; writing the manifest's
    tensors in its order must reproduce both files exactly."""
    manifest = json.loads((FIXTURES / "byte_identity" / "manifest.json").read_text())
    with BundleWriter(tmp_path / "bundle") as w:
        for t in manifest["tensors"]:
            w.add(t["name"], _manifest_value(t), dtype=t["dtype"])
    for suffix in (".index", ".data-00000-of-00001"):
        ours = (tmp_path / ("bundle" + suffix)).read_bytes()
        theirs = (FIXTURES / "byte_identity" / ("bundle" + suffix)).read_bytes()
        assert ours == theirs, suffix
    assert sorted(os.listdir(tmp_path)) == ["bundle.data-00000-of-00001", "bundle.index"]


ALL_FIXED = [d for d in dtypes._BY_NAME.values() if d.enum not in (7, 20, 21)]


@pytest.mark.parametrize("dtype", sorted(set(ALL_FIXED), key=lambda d: d.enum), ids=lambda d: d.name)
def test_every_fixed_size_dtype_round_trips(tmp_path, dtype):
    rng = np.random.default_rng(dtype.enum)
    raw = rng.integers(0, 256, size=24 * dtype.size, dtype=np.uint8)
    value = raw.view(dtype.as_numpy_dtype).reshape(2, 3, 4)
    with BundleWriter(tmp_path / "c") as w:
        w.add("x", value, dtype=dtype)
        w.add("scalar", value.reshape(-1)[:1].reshape(()), dtype=dtype)
        w.add("empty", value.reshape(-1)[:0].reshape(0, 5), dtype=dtype)
    r = BundleReader(tmp_path / "c")
    assert r.entry("x").dtype == dtype
    back = r.read("x")
    assert back.dtype == dtype.as_numpy_dtype and back.shape == (2, 3, 4)
    assert back.tobytes() == value.tobytes()
    assert r.read("scalar").shape == () and r.read("empty").shape == (0, 5)


def test_strings_round_trip_with_binary_and_unicode(tmp_path):
    values = np.array([bytes(range(256)), b"", "héllo ✓ 日本語".encode(), b"\x00" * 300],
                      dtype=object).reshape(2, 2)
    with BundleWriter(tmp_path / "c") as w:
        w.add("s", values)
        w.add("text", ["a", "ü"])
        w.add("one", "scalar")
    r = trackpoint.load_checkpoint(tmp_path / "c")
    assert r.get_tensor("s").tolist() == values.tolist()
    assert r.get_tensor("text").tolist() == [b"a", "ü".encode()]
    assert r.get_tensor("one") == b"scalar"


def test_quantized_types_are_named_explicitly(tmp_path):
    with BundleWriter(tmp_path / "c") as w:
        w.add("q", np.array([-3, 4], np.int8), dtype="qint8")
    r = trackpoint.load_checkpoint(tmp_path / "c")
    assert r.get_variable_to_dtype_map()["q"] == "qint8"
    assert r.get_tensor("q").tolist() == [-3, 4]


def test_slices_and_shards(tmp_path):
    full = np.arange(40, dtype=np.float32).reshape(10, 4)
    with BundleWriter(tmp_path / "c", num_shards=3) as w:
        w.add_slice("emb", (10, 4), [(0, 4), (0, FULL_EXTENT)], full[0:4], shard=0)
        w.add_slice("emb", (10, 4), [(4, 3), (0, 4)], full[4:7], shard=1)
        w.add_slice("emb", (10, 4), [(7, 3), (0, FULL_EXTENT)], full[7:10], shard=2)
        w.add("step", np.int64(5), shard=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "c.data-00000-of-00003", "c.data-00001-of-00003", "c.data-00002-of-00003", "c.index"]
    r = BundleReader(tmp_path / "c")
    assert r.keys() == ["emb", "step"]
    assert len(r.entry("emb").slices) == 3
    np.testing.assert_array_equal(r.read("emb"), full)


def test_failed_with_block_leaves_no_files(tmp_path):
    with pytest.raises(RuntimeError):
        with BundleWriter(tmp_path / "c") as w:
            w.add("x", np.zeros(3))
            raise RuntimeError("stop")
    import gc

    gc.collect()
    assert list(tmp_path.iterdir()) == []


def test_writer_errors_are_value_errors(tmp_path):
    w = BundleWriter(tmp_path / "c")
    w.add("x", np.zeros(3))
    with pytest.raises(errors.InvalidArgumentError, match="duplicate"):
        w.add("x", np.zeros(3))
    with pytest.raises(ValueError):
        w.add("y", np.zeros(3), shard=4)
    with pytest.raises(ValueError):
        w.add("obj", np.array([object()], dtype=object))
    w.finish()


def _copy_fixture(name, dst):
    for f in (FIXTURES / name).iterdir():
        shutil.copy(f, dst / f.name)


def test_flipped_data_bit_names_key_and_file(tmp_path):
    _copy_fixture("worked_example", tmp_path)
    data = tmp_path / "tv.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[9] ^= 0x10  # inside v's payload (offset 8, 8 bytes)
    data.write_bytes(bytes(raw))
    r = trackpoint.load_checkpoint(tmp_path / "tv")
    assert r.get_tensor("s/.ATTRIBUTES/VARIABLE_VALUE").tolist() == [b"hi", b""]
    with pytest.raises(errors.DataLossError) as info:
        r.get_tensor("v/.ATTRIBUTES/VARIABLE_VALUE")
    assert "'v/.ATTRIBUTES/VARIABLE_VALUE'" in str(info.value)
    assert str(data) in str(info.value)


@pytest.mark.parametrize("cut", [0, 1, 47, 48, 100, 193, 241])
def test_truncated_index_is_data_loss(tmp_path, cut):
    _copy_fixture("worked_example", tmp_path)
    index = tmp_path / "tv.index"
    index.write_bytes(index.read_bytes()[:cut])
    with pytest.raises(errors.DataLossError, match="tv.index"):
        trackpoint.load_checkpoint(tmp_path / "tv")


def test_garbled_index_is_data_loss(tmp_path):
    _copy_fixture("worked_example", tmp_path)
    index = tmp_path / "tv.index"
    raw = bytearray(index.read_bytes())
    for i in range(0, 150, 7):
        raw[i] ^= 0xFF
    index.write_bytes(bytes(raw))
    with pytest.raises(errors.DataLossError):
        trackpoint.load_checkpoint(tmp_path / "tv")


def test_index_claiming_huge_block_fails_fast(tmp_path):
    """A footer whose index handle claims 2^60 bytes is refused without allocating it."""
    _copy_fixture("worked_example", tmp_path)
    index = tmp_path / "tv.index"
    raw = index.read_bytes()
    footer = bytearray(48)
    huge = _varint(174) + _varint(1 << 60)
    footer[: 3 + len(huge)] = raw[-48:-45] + huge
    footer[40:] = raw[-8:]
    index.write_bytes(raw[:-48] + bytes(footer))
    with pytest.raises(errors.DataLossError):
        trackpoint.load_checkpoint(tmp_path / "tv")


# ---- a Snappy-compressed index -------------------------------------------------
# TensorFlow writes bundles uncompressed but its table reader accepts Snappy
# blocks (type 1). Re-encode a real index with every data block compressed by
# a real Snappy library and check it reads the same.


def _varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _get_varint(buf, pos):
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _mask(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _block_entries(block):
    """(key, value) pairs of an uncompressed block."""
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * num_restarts
    pos, key, out = 0, b"", []
    while pos < end:
        shared, pos = _get_varint(block, pos)
        non_shared, pos = _get_varint(block, pos)
        value_len, pos = _get_varint(block, pos)
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        out.append((key, block[pos : pos + value_len]))
        pos += value_len
    return out


def _snappy_index(raw, crc32c_fn, compress):
    footer = raw[-48:]
    _, p = _get_varint(footer, 0)
    _, p = _get_varint(footer, p)
    index_off, p = _get_varint(footer, p)
    index_size, p = _get_varint(footer, p)
    out = bytearray()
    index_block = bytearray()
    restarts = []
    for key, handle in _block_entries(raw[index_off : index_off + index_size]):
        off, q = _get_varint(handle, 0)
        size, _ = _get_varint(handle, q)
        compressed = bytes(compress(raw[off : off + size]))
        new_handle = _varint(len(out)) + _varint(len(compressed))
        out += compressed + b"\x01" + struct.pack("<I", _mask(crc32c_fn(compressed + b"\x01")))
        restarts.append(len(index_block))
        index_block += _varint(0) + _varint(len(key)) + _varint(len(new_handle)) + key + new_handle
    for r in restarts:
        index_block += struct.pack("<I", r)
    index_block += struct.pack("<I", len(restarts))
    meta = b"\x00\x00\x00\x00\x01\x00\x00\x00"
    meta_handle = _varint(len(out)) + _varint(len(meta))
    out += meta + b"\x00" + struct.pack("<I", _mask(crc32c_fn(meta + b"\x00")))
    index_handle = _varint(len(out)) + _varint(len(index_block))
    out += index_block + b"\x00" + struct.pack("<I", _mask(crc32c_fn(bytes(index_block) + b"\x00")))
    handles = meta_handle + index_handle
    out += handles + b"\x00" * (40 - len(handles)) + raw[-8:]
    return bytes(out)


@pytest.mark.parametrize("name,prefix", [("worked_example", "tv"), ("many_keys", "ckpt")])
def test_snappy_compressed_index_reads_the_same(tmp_path, name, prefix):
    cramjam = pytest.importorskip("cramjam")
    crc32c = pytest.importorskip("crc32c")
    _copy_fixture(name, tmp_path)
    index = tmp_path / (prefix + ".index")
    raw = index.read_bytes()
    compressed = _snappy_index(raw, crc32c.crc32c, cramjam.snappy.compress_raw)
    assert len(compressed) != len(raw)
    before = trackpoint.load_checkpoint(tmp_path / prefix)
    expected = {k: before.get_tensor(k) for k in before.get_variable_to_shape_map()}
    index.write_bytes(compressed)
    after = trackpoint.load_checkpoint(tmp_path / prefix)
    assert after.get_variable_to_shape_map() == before.get_variable_to_shape_map()
    for key, value in expected.items():
        np.testing.assert_array_equal(after.get_tensor(key), value)
