#!/usr/bin/env python3
"""Fuzz target (atheris) for the ``checkpoint`` state-file parser,
``trackpoint.state_file._parse_state``, and its writer ``_format_state``.

    python3 tests/fuzz/state_file_fuzzer.py [libFuzzer flags] CORPUS_DIR SEED_DIR...
    python3 tests/fuzz/state_file_fuzzer.py -runs=N FILE...   # replay inputs

The input is the file's bytes. As ``get_checkpoint_state`` does, bytes that
are not UTF-8 are skipped. The parser must return a CheckpointState or raise
its own parse error, never anything else; a state that parses must format to
text that encodes as UTF-8 (what ``update_checkpoint_state`` writes) and
parses back to the same state.

state_file.py and the modules it imports use only the standard library;
they are loaded from the source tree, so this runs without the C++ core
being built.
"""

from __future__ import annotations

import importlib
import math
import pathlib
import sys
import types

import atheris

_PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "python" / "trackpoint"

# The package's modules from the source tree, without its __init__ (which
# loads the C++ core): state_file.py and the two it imports (_paths, errors)
# use only the standard library.
_package = types.ModuleType("trackpoint")
_package.__path__ = [str(_PACKAGE)]
sys.modules["trackpoint"] = _package
state_file = importlib.import_module("trackpoint.state_file")
for _function in (
    state_file._parse_state,
    state_file._unquote,
    state_file._format_state,
    state_file._quote,
):
    atheris.instrument_func(_function)


def _same_float(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _same(a, b) -> bool:
    return (
        a.model_checkpoint_path == b.model_checkpoint_path
        and a.all_model_checkpoint_paths == b.all_model_checkpoint_paths
        and len(a.all_model_checkpoint_timestamps) == len(b.all_model_checkpoint_timestamps)
        and all(
            map(_same_float, a.all_model_checkpoint_timestamps, b.all_model_checkpoint_timestamps)
        )
        and _same_float(a.last_preserved_timestamp, b.last_preserved_timestamp)
    )


def test_one_input(data: bytes) -> None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    try:
        state = state_file._parse_state(text)
    except state_file._ParseError:
        return
    written = state_file._format_state(state).encode("utf-8")
    again = state_file._parse_state(written.decode("utf-8"))
    if not _same(state, again):
        raise AssertionError(f"round trip changed the state: {state!r} -> {again!r}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
