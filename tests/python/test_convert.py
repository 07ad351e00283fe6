"""trackpoint.convert: conversions between TensorFlow checkpoints, safetensors,
.npz and PyTorch files keep every value bit for bit; rules rename, filter and
transpose; failures leave nothing behind."""

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

import trackpoint
from trackpoint import errors
from trackpoint.bundle import BundleWriter
from trackpoint.convert import (
    PRESETS,
    Rules,
    convert,
    detect_format,
    open_source,
    parse_map,
    parse_transpose,
    torch_layout_axes,
)

from conftest import FIXTURES, expected_value, load_expected

OBJECT_GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"


def _same_bits(actual, expected, key=""):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, key
    if expected.dtype == object:
        assert list(actual.reshape(-1)) == list(expected.reshape(-1)), key
    else:
        assert actual.tobytes() == expected.tobytes(), key


def _tf_truth(fixture, prefix):
    """{key: value} as TensorFlow read the fixture (expected.json)."""
    tensors = load_expected(fixture)["checkpoints"][prefix]["tensors"]
    return {k: expected_value(s) for k, s in tensors.items() if k != OBJECT_GRAPH}


ROUND_TRIPS = [
    ("dtypes", "ckpt"),
    ("byte_identity", "bundle"),
    ("dtypes_savev2", "ckpt"),
    ("multishard", "ckpt"),
    ("tf1_partitioned", "model.ckpt-7"),
]


@pytest.mark.parametrize("fixture,prefix", ROUND_TRIPS, ids=[f for f, _ in ROUND_TRIPS])
@pytest.mark.parametrize("ext", [".safetensors", ".npz", ".pt"])
def test_round_trip_through_format_is_bit_exact(tmp_path, fixture, prefix, ext):
    pytest.importorskip("ml_dtypes")
    if ext == ".pt":
        pytest.importorskip("torch")
    truth = _tf_truth(fixture, prefix)
    middle = tmp_path / f"weights{ext}"
    report = convert(FIXTURES / fixture / prefix, middle, skip_unsupported=True)
    back = convert(middle, tmp_path / "back" / "ckpt")
    written = {src for src, _ in report.written}
    skipped = {key for key, _ in report.skipped}
    assert written | skipped == set(truth)
    assert written and not written & skipped
    assert sorted(k for _, k in back.written) == sorted(written)
    reader = trackpoint.load_checkpoint(tmp_path / "back" / "ckpt")
    assert sorted(reader.keys()) == sorted(written)
    for key in written:
        _same_bits(reader.get_tensor(key), truth[key], key)


def test_safetensors_keeps_everything_it_can_hold(tmp_path):
    pytest.importorskip("ml_dtypes")
    report = convert(FIXTURES / "dtypes/ckpt", tmp_path / "w.safetensors", skip_unsupported=True)
    skipped_types = {key.split("/")[0] for key, _ in report.skipped}
    # Strings, complex128 and the sub-byte types have no safetensors code.
    assert skipped_types == {
        "complex128",
        "empty_string_0",
        "float4_e2m1fn",
        "int2",
        "int4",
        "scalar_empty_string",
        "scalar_string",
        "string",
        "strings",
        "strings_3d",
        "uint2",
        "uint4",
    }
    assert any("object graph" in note for note in report.notes)


def test_tf_to_tf_keeps_the_object_graph(tmp_path):
    report = convert(FIXTURES / "objects/nested/ckpt", tmp_path / "copy")
    assert report.notes == []
    src = trackpoint.load_checkpoint(FIXTURES / "objects/nested/ckpt")
    dst = trackpoint.load_checkpoint(tmp_path / "copy")
    assert dst.keys() == src.keys()
    for key in src.keys():
        _same_bits(dst.get_tensor(key), src.get_tensor(key), key)


def test_renaming_drops_the_object_graph(tmp_path):
    report = convert(FIXTURES / "worked_example/tv", tmp_path / "renamed", map=["^v/=w/"])
    assert any("name-based" in note for note in report.notes)
    reader = trackpoint.load_checkpoint(tmp_path / "renamed")
    assert OBJECT_GRAPH not in reader.keys()
    assert reader.get_tensor("w/.ATTRIBUTES/VARIABLE_VALUE").tolist() == [1.0, 2.0]


def test_unsupported_dtype_fails_without_skip(tmp_path):
    with pytest.raises(errors.InvalidArgumentError, match="complex128.*--skip-unsupported"):
        convert(FIXTURES / "dtypes/ckpt", tmp_path / "w.safetensors")
    assert os.listdir(tmp_path) == []


def test_dry_run_writes_nothing(tmp_path):
    report = convert(
        FIXTURES / "byte_identity/bundle",
        tmp_path / "w.npz",
        dry_run=True,
        exclude=["^blob$", "^labels$", "^name$", "^empty_strings$", "^bf16$"],
    )
    assert len(report.plan) == 13 and report.written == []
    assert os.listdir(tmp_path) == []


def test_existing_destination_needs_overwrite(tmp_path):
    dst = tmp_path / "w.safetensors"
    dst.write_bytes(b"old")
    with pytest.raises(errors.AlreadyExistsError, match="--overwrite"):
        convert(FIXTURES / "worked_example/tv", dst, exclude=["^s/"])
    assert dst.read_bytes() == b"old"
    convert(FIXTURES / "worked_example/tv", dst, exclude=["^s/"], overwrite=True)
    with open_source(dst) as s:
        assert s.keys() == ["v/.ATTRIBUTES/VARIABLE_VALUE"]


@pytest.mark.parametrize("ext", ["", ".safetensors", ".npz"])
def test_failure_midway_leaves_nothing(tmp_path, monkeypatch, ext):
    from trackpoint.convert import _sources

    calls = []
    real = _sources.CheckpointSource.read

    def failing_read(self, key):
        calls.append(key)
        if len(calls) == 3:
            raise errors.DataLossError(f"injected failure reading {key}")
        return real(self, key)

    monkeypatch.setattr(_sources.CheckpointSource, "read", failing_read)
    with pytest.raises(errors.DataLossError, match="injected"):
        convert(FIXTURES / "byte_identity/bundle", tmp_path / f"out{ext}", skip_unsupported=True)
    assert os.listdir(tmp_path) == []


# ---- rules ----------------------------------------------------------------------------------


def test_map_rules_apply_in_order_with_groups():
    rules = Rules.build(
        map=[r"/\.ATTRIBUTES/VARIABLE_VALUE$=", "/=.", r"^(\w+)\.kernel$=\1.weight"]
    )
    assert rules.rename("dense/kernel/.ATTRIBUTES/VARIABLE_VALUE") == "dense.weight"
    pattern, replacement = parse_map(r"a\=b=c")
    assert pattern.pattern == r"a\=b" and replacement == "c"
    assert pattern.sub(replacement, "xa=b") == "xc"


@pytest.mark.parametrize("rule", ["no_equals_sign", "(unclosed=x", r"a=\9"])
def test_bad_map_rules(rule):
    with pytest.raises(errors.InvalidArgumentError):
        parse_map(rule)


def test_map_collisions_and_empty_names_are_refused(tmp_path):
    src = FIXTURES / "worked_example/tv"
    with pytest.raises(errors.InvalidArgumentError, match="sends both"):
        convert(src, tmp_path / "x", map=[".*=same"])
    with pytest.raises(errors.InvalidArgumentError, match="empty name"):
        convert(src, tmp_path / "x", map=["^v/.*$="])


def test_torch_layout_axes():
    assert torch_layout_axes(1) == (0,)
    assert torch_layout_axes(2) == (1, 0)
    assert torch_layout_axes(3) == (2, 1, 0)
    assert torch_layout_axes(4) == (3, 2, 0, 1)


def test_transposes(tmp_path):
    kernel = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    conv = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)
    with BundleWriter(tmp_path / "src") as w:
        w.add("dense/kernel", kernel[0])
        w.add("conv/kernel", conv)
        w.add("custom", kernel)
        w.add("bias", np.ones(3, np.float32))
    convert(tmp_path / "src", tmp_path / "dst", transpose=["kernel$", "^custom$=1,2,0", "bias"])
    reader = trackpoint.load_checkpoint(tmp_path / "dst")
    _same_bits(reader.get_tensor("dense/kernel"), kernel[0].T)
    _same_bits(reader.get_tensor("conv/kernel"), conv.transpose(3, 2, 0, 1))
    _same_bits(reader.get_tensor("custom"), kernel.transpose(1, 2, 0))
    _same_bits(reader.get_tensor("bias"), np.ones(3, np.float32))
    with pytest.raises(errors.InvalidArgumentError, match="do not fit"):
        convert(tmp_path / "src", tmp_path / "bad", transpose=["^custom$=1,0"])
    with pytest.raises(errors.InvalidArgumentError, match="integers"):
        parse_transpose("x=a,b")


def test_tf_to_torch_preset(tmp_path):
    report = convert(
        FIXTURES / "objects/slots/ckpt",
        tmp_path / "m.npz",
        preset="tf-to-torch",
        exclude=["^optimizer/"],
    )
    assert sorted(k for _, k in report.written) == ["model.b", "model.frozen", "model.w"]
    reader = trackpoint.load_checkpoint(FIXTURES / "objects/slots/ckpt")
    with open_source(tmp_path / "m.npz") as out:
        for src, key in report.written:
            _same_bits(out.read(key), reader.get_tensor(src), key)
    rules = Rules.build(preset="tf-to-torch")
    assert rules.rename("model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE") == "model.dense.weight"
    assert rules.rename("bn/moving_variance") == "bn.running_var"
    assert rules.excluded("w/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE")
    assert rules.excluded(OBJECT_GRAPH) and rules.excluded(
        "save_counter/.ATTRIBUTES/VARIABLE_VALUE"
    )
    assert rules.axes("model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE", 2) == (1, 0)
    assert rules.axes("model/dense/bias/.ATTRIBUTES/VARIABLE_VALUE", 1) is None
    assert "tf-to-torch" in PRESETS
    with pytest.raises(errors.InvalidArgumentError, match="unknown preset"):
        Rules.build(preset="nope")


# ---- formats --------------------------------------------------------------------------------


def test_detect_format(tmp_path):
    assert detect_format("x.safetensors", reading=False) == "safetensors"
    assert detect_format("x.NPZ", reading=False) == "npz"
    assert detect_format("x.pth", reading=False) == "torch"
    assert detect_format("run/ckpt-3", reading=False) == "tf"
    assert detect_format(str(FIXTURES / "worked_example/tv.index"), reading=True) == "tf"
    # An unknown extension: the bytes decide.
    convert(FIXTURES / "worked_example/tv", tmp_path / "w.safetensors", exclude=["^s/"])
    os.rename(tmp_path / "w.safetensors", tmp_path / "w.weights")
    assert detect_format(str(tmp_path / "w.weights"), reading=True) == "safetensors"
    (tmp_path / "junk").write_bytes(b"junk")
    with pytest.raises(errors.InvalidArgumentError, match="--from"):
        detect_format(str(tmp_path / "junk"), reading=True)


def test_checkpoint_paths_that_name_files_or_directories():
    with open_source(FIXTURES / "worked_example/tv.index") as s:
        assert s.path == str(FIXTURES / "worked_example/tv")
    with open_source(FIXTURES / "worked_example/tv.data-00000-of-00001") as s:
        assert s.path == str(FIXTURES / "worked_example/tv")
    with open_source(FIXTURES / "manager") as s:
        assert s.path.endswith("ckpt-5")


@pytest.mark.parametrize(
    "fmt,name", [("tf", "nope"), ("safetensors", "nope.safetensors"), ("npz", "nope.npz")]
)
def test_missing_source_is_not_found(tmp_path, fmt, name):
    with pytest.raises(errors.NotFoundError):
        open_source(tmp_path / name)


def test_safetensors_files_from_the_safetensors_package(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    values = {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
        "i64": np.array(7, np.int64),
        "u8": np.arange(5, dtype=np.uint8),
        "b": np.array([True, False]),
        "c64": np.array([1 + 2j], np.complex64),
        "empty": np.zeros((0, 4), np.float16),
    }
    st.save_file(values, str(tmp_path / "in.safetensors"), metadata={"format": "np"})
    convert(tmp_path / "in.safetensors", tmp_path / "ckpt")
    reader = trackpoint.load_checkpoint(tmp_path / "ckpt")
    for key, value in values.items():
        _same_bits(reader.get_tensor(key), value, key)
    # And back: the package reads what trackpoint writes.
    convert(tmp_path / "ckpt", tmp_path / "out.safetensors")
    loaded = st.load_file(str(tmp_path / "out.safetensors"))
    for key, value in values.items():
        _same_bits(loaded[key], value, key)


def test_safetensors_package_reads_bfloat16_and_float8(tmp_path):
    pytest.importorskip("safetensors")
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    convert(FIXTURES / "byte_identity/bundle", tmp_path / "w.safetensors", skip_unsupported=True)
    loaded = load_file(str(tmp_path / "w.safetensors"))
    assert loaded["bf16"].dtype == torch.bfloat16
    assert loaded["bf16"].float().tolist() == [[1.0, -0.5], [3.0, 256.0]]
    truth = _tf_truth("dtypes_savev2", "ckpt")
    convert(FIXTURES / "dtypes_savev2/ckpt", tmp_path / "d.safetensors", skip_unsupported=True)
    loaded = load_file(str(tmp_path / "d.safetensors"))
    for key in ("float8_e5m2", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2fnuz", "bfloat16"):
        _same_bits(loaded[key].view(torch.uint8).numpy(), truth[key].view(np.uint8), key)


def _write_safetensors(path, header, data=b""):
    text = json.dumps(header).encode() if isinstance(header, dict) else header
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


@pytest.mark.parametrize(
    "header,data,error",
    [
        (
            {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}},
            b"\0" * 4,
            errors.DataLossError,
        ),
        (
            {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}},
            b"\0" * 8,
            errors.DataLossError,
        ),
        ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}, b"", errors.DataLossError),
        ({"a": {"dtype": "F32", "shape": [2]}}, b"\0" * 8, errors.DataLossError),
        (
            {"a": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 8]}},
            b"\0" * 8,
            errors.UnimplementedError,
        ),
        (
            {"a": {"dtype": "F32", "shape": [2**62, 2**62], "data_offsets": [0, 8]}},
            b"\0" * 8,
            errors.DataLossError,
        ),
        (b"{not json", b"", errors.DataLossError),
        (b"[1, 2]", b"", errors.DataLossError),
    ],
)
def test_malformed_safetensors_are_errors(tmp_path, header, data, error):
    path = tmp_path / "bad.safetensors"
    _write_safetensors(path, header, data)
    with pytest.raises(error):
        open_source(path)


def test_safetensors_header_size_past_the_file(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", 2**63) + b"{}")
    with pytest.raises(errors.DataLossError, match="header size"):
        open_source(path)
    path.write_bytes(b"abc")
    with pytest.raises(errors.DataLossError):
        open_source(path)


def test_npz_strings_and_unsupported_arrays(tmp_path):
    np.savez(
        tmp_path / "in.npz",
        names=np.array([b"a", b"bc"]),
        text=np.array(["x", "yz"]),
        big_endian=np.arange(3, dtype=">i4"),
    )
    convert(tmp_path / "in.npz", tmp_path / "ckpt")
    reader = trackpoint.load_checkpoint(tmp_path / "ckpt")
    assert list(reader.get_tensor("names")) == [b"a", b"bc"]
    assert list(reader.get_tensor("text")) == [b"x", b"yz"]
    assert reader.get_tensor("big_endian").tolist() == [0, 1, 2]
    np.savez(tmp_path / "objects.npz", o=np.array([{"a": 1}], dtype=object))
    with open_source(tmp_path / "objects.npz") as s:
        with pytest.raises(errors.UnimplementedError, match="object"):
            s.spec("o")
    with pytest.raises(errors.InvalidArgumentError, match="string"):
        convert(tmp_path / "ckpt", tmp_path / "out.npz")


def test_torch_state_dicts(tmp_path):
    torch = pytest.importorskip("torch")
    state = {
        "model": {
            "w": torch.arange(6, dtype=torch.float32).reshape(2, 3).t(),
            "bf": torch.tensor([1.5, -2.0], dtype=torch.bfloat16),
        },
        "step": 3,
        "layers": [torch.tensor([1, 2], dtype=torch.int16)],
    }
    torch.save(state, tmp_path / "in.pt")
    with open_source(tmp_path / "in.pt") as s:
        assert s.keys() == ["layers.0", "model.bf", "model.w"]
        assert s.ignored == ["step"]
    convert(tmp_path / "in.pt", tmp_path / "ckpt")
    reader = trackpoint.load_checkpoint(tmp_path / "ckpt")
    _same_bits(reader.get_tensor("model.w"), np.arange(6, dtype=np.float32).reshape(2, 3).T)
    assert reader.get_tensor("model.bf").astype(np.float32).tolist() == [1.5, -2.0]
    convert(tmp_path / "ckpt", tmp_path / "out.pt")
    back = torch.load(tmp_path / "out.pt", weights_only=True)
    assert back["model.bf"].dtype == torch.bfloat16
    assert torch.equal(back["model.w"], state["model"]["w"])
    assert torch.equal(back["layers.0"], state["layers"][0])


class _NotAStateDict:
    pass


def test_torch_files_are_loaded_weights_only(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"x": _NotAStateDict()}, tmp_path / "evil.pt")
    with pytest.raises(errors.InvalidArgumentError, match="weights_only"):
        open_source(tmp_path / "evil.pt")
    torch.save(torch.zeros(2), tmp_path / "tensor.pt")
    with pytest.raises(errors.InvalidArgumentError, match="not a state_dict"):
        open_source(tmp_path / "tensor.pt")


# ---- the model part of a checkpoint as a PyTorch state_dict (--root) -----------------------


def _torch_model(torch):
    return torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(), torch.nn.Linear(4, 2)
    )


def test_tf_to_torch_with_root_gives_what_load_state_dict_takes_as_it_is(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = _torch_model(torch)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(2):  # moves weights, slots and the batch norm statistics
        optimizer.zero_grad()
        model(torch.randn(8, 3)).square().sum().backward()
        optimizer.step()
    ckpt = trackpoint.Checkpoint(
        model=model, optimizer=optimizer, config=trackpoint.JsonState({"epochs": 3})
    )
    path = ckpt.save(tmp_path / "run/ckpt")
    out = tmp_path / "model.pt"
    proc = subprocess.run(
        [sys.executable, "-m", "trackpoint", "convert", str(path), str(out)]
        + ["--preset", "tf-to-torch", "--root", "model"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    state = torch.load(out, weights_only=True)
    assert sorted(state) == sorted(model.state_dict())
    fresh = _torch_model(torch)
    result = fresh.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for name, expected in model.state_dict().items():
        got = fresh.state_dict()[name]
        assert got.dtype == expected.dtype and torch.equal(got, expected), name
    assert state["1.num_batches_tracked"].dtype == torch.int64


def test_tf_to_torch_leaves_out_strings_and_python_state(tmp_path):
    torch = pytest.importorskip("torch")
    with BundleWriter(tmp_path / "ckpt") as w:
        w.add("model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE", np.ones((2, 3), np.float32))
        w.add("model/vocab/.ATTRIBUTES/VARIABLE_VALUE", np.array([b"a", b"b"], dtype=object))
        w.add("model/config/.ATTRIBUTES/py_state", np.array(b'{"a": 1}', dtype=object))
        w.add("model/rng/.ATTRIBUTES/VARIABLE_VALUE", np.array([1, 2], np.uint32))
        w.add("model/rng/.ATTRIBUTES/PRNG_IMPL", np.array(b"threefry2x32", dtype=object))
        w.add("step/.ATTRIBUTES/VARIABLE_VALUE", np.int64(7))
    report = convert(tmp_path / "ckpt", tmp_path / "m.pt", preset="tf-to-torch", root="model")
    assert sorted(k for _, k in report.written) == ["dense.weight", "rng"]
    assert sorted(report.excluded) == [
        "model/config/.ATTRIBUTES/py_state",
        "model/rng/.ATTRIBUTES/PRNG_IMPL",
        "model/vocab/.ATTRIBUTES/VARIABLE_VALUE",
        "step/.ATTRIBUTES/VARIABLE_VALUE",
    ]
    state = torch.load(tmp_path / "m.pt", weights_only=True)
    assert state["dense.weight"].shape == (3, 2)  # transposed to PyTorch's layout
    # Without a root the model's name stays; strings are still left out.
    report = convert(tmp_path / "ckpt", tmp_path / "all.pt", preset="tf-to-torch")
    assert sorted(k for _, k in report.written) == ["model.dense.weight", "model.rng", "step"]


def test_root_rules():
    rules = Rules.build(preset="tf-to-torch", root="model/")
    assert rules.root == "model"
    assert rules.rename("model/0/weight/.ATTRIBUTES/VARIABLE_VALUE") == "0.weight"
    assert rules.excluded("model_ema/0/weight/.ATTRIBUTES/VARIABLE_VALUE")
    assert rules.excluded("optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE")
    assert not rules.excluded("model/0/weight/.ATTRIBUTES/VARIABLE_VALUE")
    nested = Rules.build(root="model/encoder")
    assert nested.rename("model/encoder/layer/kernel") == "layer/kernel"
    assert nested.excluded("model/decoder/layer/kernel")
    assert Rules.build().rename("model/x") == "model/x"
    with pytest.raises(errors.InvalidArgumentError, match="names no object"):
        Rules.build(root="/")


def test_root_that_holds_no_key_is_an_error_naming_the_top_level_names(tmp_path):
    with BundleWriter(tmp_path / "ckpt") as w:
        w.add("model/w/.ATTRIBUTES/VARIABLE_VALUE", np.ones(2, np.float32))
        w.add("optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE", np.int64(1))
    with pytest.raises(errors.InvalidArgumentError, match=r"'modle'.*model, optimizer"):
        convert(tmp_path / "ckpt", tmp_path / "m.npz", root="modle")
    assert not (tmp_path / "m.npz").exists()
    report = convert(tmp_path / "ckpt", tmp_path / "m.npz", root="model", dry_run=True)
    assert [(p.source_key, p.key) for p in report.plan] == [
        ("model/w/.ATTRIBUTES/VARIABLE_VALUE", "w/.ATTRIBUTES/VARIABLE_VALUE")
    ]
