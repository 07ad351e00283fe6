#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target, taken from tests/fixtures.

    tests/fuzz/make_seeds.py OUT_DIR

creates OUT_DIR/<target>/ for each target of tests/fuzz:

  table          every .index file (up to 64 KiB) and the Snappy streams
  bundle_proto   a selector byte + one message: every BundleEntryProto and
                 BundleHeaderProto of the fixtures, their shapes, slices and
                 VersionDefs (the selector is the fuzzer's first byte)
  object_graph   the TrackableObjectGraph stored in each object-based fixture
  bundle_reader  fixed32 index size + .index + data file, for every
                 single-shard fixture (up to 64 KiB in all)
  state_file     every `checkpoint` state file, plus a few hand-written ones

Standard library only (it parses the table format itself), so it runs before
anything is built.
"""

from __future__ import annotations

import hashlib
import pathlib
import struct
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
MAX_SEED = 64 << 10
MAX_ENTRIES_PER_INDEX = 100  # many_keys alone has thousands of alike entries
OBJECT_GRAPH_KEY = b"_CHECKPOINTABLE_OBJECT_GRAPH"


def varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def block_entries(block: bytes):
    """(key, value) of one uncompressed table block."""
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * num_restarts
    pos, key = 0, b""
    while pos < end:
        shared, pos = varint(block, pos)
        non_shared, pos = varint(block, pos)
        value_len, pos = varint(block, pos)
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        yield key, block[pos : pos + value_len]
        pos += value_len


def read_block(data: bytes, handle: bytes):
    offset, pos = varint(handle, 0)
    size, _ = varint(handle, pos)
    if data[offset + size] != 0:  # compressed: not needed for seeds
        return None
    return data[offset : offset + size]


def table_entries(data: bytes):
    """Every (key, value) of a .index file."""
    footer = data[-48:]
    _, pos = varint(footer, 0)
    _, pos = varint(footer, pos)
    index = read_block(data, footer[pos:])
    for _, handle in block_entries(index):
        block = read_block(data, handle)
        if block is not None:
            yield from block_entries(block)


def fields(message: bytes):
    """(field number, wire type, value) of a protobuf message; value is an int
    for varints and bytes otherwise."""
    pos = 0
    while pos < len(message):
        tag, pos = varint(message, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = varint(message, pos)
        elif wire == 1:
            value, pos = message[pos : pos + 8], pos + 8
        elif wire == 2:
            n, pos = varint(message, pos)
            value, pos = message[pos : pos + n], pos + n
        elif wire == 5:
            value, pos = message[pos : pos + 4], pos + 4
        else:
            return
        yield field, wire, value


def single_string(payload: bytes) -> bytes:
    """The element of a one-element string tensor payload."""
    length, pos = varint(payload, 0)
    pos += 4  # the length checksum
    return payload[pos : pos + length]


def main(out: pathlib.Path) -> None:
    seeds: dict[str, set[bytes]] = {
        name: set()
        for name in ("table", "bundle_proto", "object_graph", "bundle_reader", "state_file")
    }
    for index_path in sorted(FIXTURES.rglob("*.index")):
        data = index_path.read_bytes()
        if len(data) <= MAX_SEED:
            seeds["table"].add(data)
        prefix = str(index_path)[: -len(".index")]
        data_path = pathlib.Path(prefix + ".data-00000-of-00001")
        shard = data_path.read_bytes() if data_path.exists() else None
        for n, (key, value) in enumerate(table_entries(data)):
            if n > MAX_ENTRIES_PER_INDEX:
                break
            if key == b"":
                seeds["bundle_proto"].add(b"\x01" + value)
                for field, _, sub in fields(value):
                    if field == 3:
                        seeds["bundle_proto"].add(b"\x04" + sub)
                continue
            seeds["bundle_proto"].add(b"\x00" + value)
            entry = {field: v for field, _, v in fields(value)}
            for field, _, sub in fields(value):
                if field == 2:
                    seeds["bundle_proto"].add(b"\x02" + sub)
                elif field == 7:
                    seeds["bundle_proto"].add(b"\x03" + sub)
            if key == OBJECT_GRAPH_KEY and shard is not None:
                offset, size = entry.get(4, 0), entry.get(5, 0)
                seeds["object_graph"].add(single_string(shard[offset : offset + size]))
        if shard is not None and len(data) + len(shard) <= MAX_SEED:
            seeds["bundle_reader"].add(struct.pack("<I", len(data)) + data + shard)
    for stream in sorted((FIXTURES / "snappy").glob("*.snappy")):
        seeds["table"].add(stream.read_bytes())
    for state in sorted(FIXTURES.rglob("checkpoint")):
        seeds["state_file"].add(state.read_bytes())
    seeds["state_file"].update(
        [
            b'model_checkpoint_path: "ckpt-1"\n',
            (
                b"model_checkpoint_path: 'a\\\\b\\\"c\\x41\\101\\n'\n"
                b'all_model_checkpoint_paths: "a"\nall_model_checkpoint_timestamps: 1.5e9\n'
                b"last_preserved_timestamp: -0.0\n# a comment\n"
            ),
        ]
    )
    for target, contents in seeds.items():
        directory = out / target
        directory.mkdir(parents=True, exist_ok=True)
        for seed in contents:
            name = hashlib.sha1(seed).hexdigest()
            (directory / name).write_bytes(seed)
        print(f"{target}: {len(contents)} seeds in {directory}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(pathlib.Path(sys.argv[1]))
