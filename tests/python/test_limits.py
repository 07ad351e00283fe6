"""Hostile checkpoints: every size, count, offset and shape read from a file is
checked (against the file's size or a sane bound) before anything is
allocated for it, and a violation is a DataLossError, never a crash, a
MemoryError or a hang. One test per limit; the indexes are written by hand
(trackpoint's own writer refuses to produce them)."""

from __future__ import annotations

import numpy as np
import pytest

import trackpoint
from trackpoint import _core, _core_testing
from trackpoint.errors import DataLossError

FLOAT, INT32, UINT8, STRING, COMPLEX128 = 1, 3, 4, 7, 18
INT64_MAX = (1 << 63) - 1


def masked_crc(data: bytes) -> int:
    return _core.crc32c_mask(_core.crc32c(data))


def write_bundle(prefix, entries: dict, data: bytes = b"", num_shards: int = 1):
    """An index with a valid header and the given {key: BundleEntryProto bytes},
    and shard 0's data file holding `data`."""
    rows = [(b"", _core_testing.serialize_bundle_header(num_shards))]
    rows += sorted((k.encode() if isinstance(k, str) else k, v) for k, v in entries.items())
    _core_testing.write_table(f"{prefix}.index", rows)
    with open(f"{prefix}.data-00000-of-{num_shards:05d}", "wb") as f:
        f.write(data)
    return str(prefix)


def entry(dtype, shape, offset=0, size=0, crc=0, shard_id=0, slices=()):
    return _core_testing.serialize_bundle_entry(
        dtype, list(shape), shard_id, offset, size, crc, [list(s) for s in slices]
    )


def fixed_entry(dtype, shape, payload: bytes, offset=0):
    return entry(dtype, shape, offset, len(payload), masked_crc(payload))


def test_a_hand_written_bundle_reads(tmp_path):
    # The helpers themselves: a valid bundle made this way reads back.
    payload = np.arange(6, dtype=np.int32).tobytes()
    prefix = write_bundle(tmp_path / "ok", {"x": fixed_entry(INT32, [2, 3], payload)}, payload)
    np.testing.assert_array_equal(
        trackpoint.load_checkpoint(prefix).get_tensor("x"),
        np.arange(6, dtype=np.int32).reshape(2, 3),
    )


def test_entry_claiming_1e18_elements_fails_before_any_allocation(tmp_path):
    # Consistent in itself (10^18 uint8 elements, size 10^18): only the data
    # file's 16 bytes give it away. The listing works; reading is DataLoss,
    # not a MemoryError from sizing a buffer by the shape.
    prefix = write_bundle(tmp_path / "c", {"x": entry(UINT8, [10**6] * 3, size=10**18)}, bytes(16))
    reader = trackpoint.load_checkpoint(prefix)
    assert reader.get_variable_to_shape_map() == {"x": [10**6] * 3}
    with pytest.raises(DataLossError, match="data-00000-of-00001"):
        reader.get_tensor("x")


def test_size_disagreeing_with_the_shape(tmp_path):
    prefix = write_bundle(tmp_path / "c", {"x": entry(FLOAT, [10**6] * 3, size=16)}, bytes(16))
    with pytest.raises(DataLossError, match="expected"):
        trackpoint.load_checkpoint(prefix)


def test_size_equal_to_a_wrapped_element_count_times_width(tmp_path):
    # 1229782938247303442 complex128 elements are 16 times that many bytes,
    # which wraps past 2^64 to exactly the claimed size: was accepted.
    elements, size = 1229782938247303442, 1229782938247303456
    assert (elements * 16) % (1 << 64) == size
    prefix = write_bundle(tmp_path / "c", {"x": entry(COMPLEX128, [elements], size=size)})
    with pytest.raises(DataLossError):
        trackpoint.load_checkpoint(prefix)


def test_extent_past_the_end_of_the_data_file(tmp_path):
    payload = bytes(range(16))
    prefix = write_bundle(
        tmp_path / "c", {"x": fixed_entry(FLOAT, [4], payload, offset=1 << 40)}, payload
    )
    with pytest.raises(DataLossError, match="offset 1099511627776"):
        trackpoint.load_checkpoint(prefix).get_tensor("x")


def test_extent_overlapping_the_end_of_the_data_file(tmp_path):
    payload = bytes(range(16))
    prefix = write_bundle(
        tmp_path / "c", {"x": fixed_entry(FLOAT, [4], payload, offset=8)}, payload
    )
    with pytest.raises(DataLossError):
        trackpoint.load_checkpoint(prefix).get_tensor("x")


def test_negative_offset(tmp_path):
    prefix = write_bundle(tmp_path / "c", {"x": entry(FLOAT, [1], offset=-4, size=4)}, bytes(4))
    with pytest.raises(DataLossError, match="negative"):
        trackpoint.load_checkpoint(prefix)


def test_shard_id_outside_num_shards(tmp_path):
    prefix = write_bundle(tmp_path / "c", {"x": entry(FLOAT, [1], size=4, shard_id=3)}, bytes(4))
    with pytest.raises(DataLossError, match="shard 3 of 1"):
        trackpoint.load_checkpoint(prefix)


def test_negative_dimension(tmp_path):
    prefix = write_bundle(tmp_path / "c", {"x": entry(FLOAT, [2, -1])})
    with pytest.raises(DataLossError, match="negative"):
        trackpoint.load_checkpoint(prefix)


def test_rank_above_254(tmp_path):
    prefix = write_bundle(tmp_path / "c", {"x": entry(FLOAT, [1] * 255, size=4)}, bytes(4))
    with pytest.raises(DataLossError, match="254"):
        trackpoint.load_checkpoint(prefix)


def test_element_count_overflowing_int64(tmp_path):
    prefix = write_bundle(tmp_path / "c", {"x": entry(UINT8, [1 << 32, 1 << 32], size=1)})
    with pytest.raises(DataLossError, match="overflows"):
        trackpoint.load_checkpoint(prefix)


def test_string_tensor_claiming_more_elements_than_bytes(tmp_path):
    # Each string takes at least one length byte: 10^18 of them cannot fit.
    prefix = write_bundle(tmp_path / "c", {"s": entry(STRING, [10**18], size=64)}, bytes(64))
    with pytest.raises(DataLossError, match="too small"):
        trackpoint.load_checkpoint(prefix)


def test_string_tensor_of_int64_max_elements(tmp_path):
    # size < elements + 4 was computed in int64: overflow (UB) at INT64_MAX.
    prefix = write_bundle(tmp_path / "c", {"s": entry(STRING, [INT64_MAX], size=64)}, bytes(64))
    with pytest.raises(DataLossError):
        trackpoint.load_checkpoint(prefix)


def test_string_lengths_past_the_payload(tmp_path):
    # Two strings whose varint lengths (2^40 each) exceed the payload.
    lengths = bytes([0x80, 0x80, 0x80, 0x80, 0x80, 0x20]) * 2
    payload = lengths + bytes(4)
    prefix = write_bundle(tmp_path / "c", {"s": fixed_entry(STRING, [2], payload)}, payload)
    with pytest.raises(DataLossError, match="exceed the payload"):
        trackpoint.load_checkpoint(prefix).get_tensor("s")


def test_string_extent_past_the_data_file(tmp_path):
    prefix = write_bundle(
        tmp_path / "c", {"s": entry(STRING, [2], offset=0, size=1 << 40)}, bytes(8)
    )
    with pytest.raises(DataLossError, match="past the end"):
        trackpoint.load_checkpoint(prefix).get_tensor("s")


def _partitioned(tmp_path, full_shape, parts, declared=None):
    """A float32 tensor "p" of full_shape stored as the given slices (each a
    list of (start, length)), filled with ones; `declared` (default: the same
    slices) is what the full entry lists."""
    entries, data = {}, b""
    for extents in parts:
        shape = [full_shape[d] if n == -1 else n for d, (_, n) in enumerate(extents)]
        payload = np.ones(shape, np.float32).tobytes()
        entries[_core_testing.slice_key("p", extents)] = fixed_entry(FLOAT, shape, payload, len(data))
        data += payload
    entries["p"] = entry(FLOAT, full_shape, slices=declared if declared is not None else parts)
    return write_bundle(tmp_path / "part", entries, data)


def test_partitioned_tensor_reads(tmp_path):
    prefix = _partitioned(tmp_path, [4, 2], [[(0, 2), (0, -1)], [(2, 2), (0, -1)]])
    np.testing.assert_array_equal(
        trackpoint.load_checkpoint(prefix).get_tensor("p"), np.ones((4, 2), np.float32)
    )


def test_slice_outside_its_tensor(tmp_path):
    prefix = _partitioned(
        tmp_path, [4, 2], [[(0, 2), (0, -1)]], declared=[[(0, 2), (0, -1)], [(3, 2), (0, -1)]]
    )
    with pytest.raises(DataLossError, match="exceeds dimension size 4"):
        trackpoint.load_checkpoint(prefix)


def test_overlapping_slices(tmp_path):
    prefix = _partitioned(tmp_path, [4, 2], [[(0, 3), (0, -1)], [(2, 2), (0, -1)]])
    with pytest.raises(DataLossError, match="overlap"):
        trackpoint.load_checkpoint(prefix).get_tensor("p")


def test_slices_that_do_not_cover_the_tensor(tmp_path):
    prefix = _partitioned(tmp_path, [4, 2], [[(0, 2), (0, -1)]])
    with pytest.raises(DataLossError, match="slices only 4"):
        trackpoint.load_checkpoint(prefix).get_tensor("p")


def test_partitioned_tensor_claiming_1e18_elements(tmp_path):
    # One small slice of a 10^18-element tensor: the slices bound what may
    # be allocated, so this is DataLoss before numpy is asked for 4 EB.
    prefix = _partitioned(tmp_path, [10**6] * 3, [[(0, 1), (0, 1), (0, 2)]])
    with pytest.raises(DataLossError, match="slices only 2"):
        trackpoint.load_checkpoint(prefix).get_tensor("p")


def test_slice_entry_whose_shape_disagrees_with_its_slice(tmp_path):
    payload = np.ones(2, np.float32).tobytes()
    entries = {
        _core_testing.slice_key("p", [(0, 2)]): fixed_entry(FLOAT, [2, 1], payload),
        "p": entry(FLOAT, [4], slices=[[(0, 2)]]),
    }
    prefix = write_bundle(tmp_path / "c", entries, payload)
    with pytest.raises(DataLossError, match="disagrees"):
        trackpoint.load_checkpoint(prefix).get_tensor("p")


def test_truncated_and_bit_flipped_indexes_are_data_loss(tmp_path):
    payload = np.arange(4, dtype=np.float32).tobytes()
    write_bundle(tmp_path / "c", {"x": fixed_entry(FLOAT, [4], payload)}, payload)
    index = (tmp_path / "c.index").read_bytes()
    damaged = [index[:n] for n in range(len(index))]
    damaged += [index[:i] + bytes([index[i] ^ 0x10]) + index[i + 1 :] for i in range(len(index))]
    for n, data in enumerate(damaged):
        (tmp_path / "c.index").write_bytes(data)
        try:
            reader = trackpoint.load_checkpoint(str(tmp_path / "c"))
            reader.get_tensor("x")
        except DataLossError:
            continue
        except trackpoint.errors.NotFoundError:
            continue  # a flip inside the key: "x" is not there any more
        # A flip the format cannot see (an unused bit of a varint's padding)
        # must still give the right value.
        np.testing.assert_array_equal(reader.get_tensor("x"), np.arange(4, dtype=np.float32))


# ---- the object graph ------------------------------------------------------------------


def _graph_checkpoint(tmp_path, nodes):
    """A checkpoint holding only an object graph (as serialize_object_graph takes it)."""
    graph = _core.serialize_object_graph(nodes)
    with trackpoint.bundle.BundleWriter(tmp_path / "g") as w:
        w.add("_CHECKPOINTABLE_OBJECT_GRAPH", np.array(graph, dtype=object))
    return str(tmp_path / "g")


def _node(children=(), attributes=()):
    return {
        "children": list(children),
        "attributes": list(attributes),
        "slot_variables": [],
        "registered_saver": None,
        "has_checkpoint_values": None,
    }


def test_object_graph_node_id_outside_the_graph(tmp_path):
    prefix = _graph_checkpoint(tmp_path, [_node(children=[(7, "child")])])
    with pytest.raises(DataLossError, match="node 0 has a child node_id 7, but the graph has 1"):
        trackpoint.Checkpoint().read(prefix)


def test_object_graph_with_no_nodes(tmp_path):
    prefix = _graph_checkpoint(tmp_path, [])
    with pytest.raises(DataLossError, match="no nodes"):
        trackpoint.Checkpoint().read(prefix)


def test_object_graph_that_is_a_long_chain(tmp_path):
    # 20,000 nodes, each the child of the one before (with a cycle back to
    # the root): restoring walks it in linear time and memory, and names no
    # more of the chain than a message needs.
    # Building every node's full path used to take memory quadratic in the
    # depth (3.5 GB for a 640 KB graph of 60,000 nodes).
    n = 20_000
    nodes = [
        _node(
            children=[((i + 1) % n, "c")],
            attributes=[("VARIABLE_VALUE", "", f"k{i}")] if i % 1000 == 999 else [],
        )
        for i in range(n)
    ]
    prefix = _graph_checkpoint(tmp_path, nodes)
    status = trackpoint.Checkpoint().read(prefix)
    with pytest.raises(AssertionError, match=r"g: \.\.\.(/c){60,}, "):  # a bounded path
        status.assert_consumed()  # nothing live took the chain's values
    status.expect_partial()
