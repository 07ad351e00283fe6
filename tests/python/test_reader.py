"""load_checkpoint / CheckpointReader / list_variables / load_variable against
checkpoints written by TensorFlow 2.21 (tests/fixtures)."""

import shutil

import numpy as np
import pytest

import trackpoint
from trackpoint import errors

from conftest import FIXTURES, expected_value, fixture_checkpoints, load_expected

CHECKPOINTS = fixture_checkpoints()


def _same_bytes(actual, expected):
    """Exact equality, bit for bit (NaN payloads and -0.0 included)."""
    actual = np.asarray(actual)
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    if expected.dtype == object:
        assert list(actual.reshape(-1)) == list(expected.reshape(-1))
    else:
        assert actual.tobytes() == expected.tobytes()


@pytest.mark.parametrize(
    "name,prefix,tensors", CHECKPOINTS, ids=[f"{n}/{p.name}" for n, p, _ in CHECKPOINTS]
)
def test_reads_every_tensor_exactly(name, prefix, tensors):
    reader = trackpoint.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    assert sorted(shapes) == sorted(tensors)
    for key, spec in tensors.items():
        assert shapes[key] == spec["shape"], key
        assert dtypes[key] == spec["dtype"], key
        assert dtypes[key].name == spec["dtype"], key
        if key == "_CHECKPOINTABLE_OBJECT_GRAPH":
            assert isinstance(reader.get_tensor(key), bytes)
            continue
        value = reader.get_tensor(key)
        if spec["dtype"] == "string" and not spec["shape"]:
            assert isinstance(value, bytes), key
            value = np.array(value, dtype=object)
        _same_bytes(value, expected_value(spec))


def test_scalars_come_back_as_tensorflow_returns_them():
    reader = trackpoint.load_checkpoint(FIXTURES / "byte_identity" / "bundle")
    step = reader.get_tensor("global_step")
    assert type(step) is np.int64 and step == 1234567
    assert reader.get_tensor("name") == b"trackpoint"
    labels = reader.get_tensor("labels")
    assert labels.dtype == object and labels[0] == b"cat"


def test_partitioned_variable_is_assembled():
    reader = trackpoint.load_checkpoint(FIXTURES / "tf1_partitioned" / "model.ckpt-7")
    spec = load_expected("tf1_partitioned")["checkpoints"]["model.ckpt-7"]["tensors"]["emb"]
    emb = reader.get_tensor("emb")
    assert emb.shape == (10, 4)
    _same_bytes(emb, expected_value(spec))


def test_directory_resolves_to_its_latest_checkpoint():
    manager = FIXTURES / "manager"
    expected = load_expected("manager")
    latest = expected["latest_checkpoint"]
    assert trackpoint.latest_checkpoint(manager) == str(manager / latest)
    reader = trackpoint.load_checkpoint(manager)
    assert reader.prefix == str(manager / latest)
    variables = trackpoint.list_variables(manager)
    assert [n for n, _ in variables] == sorted(expected["checkpoints"][latest]["tensors"])
    key, spec = next(
        (k, s) for k, s in expected["checkpoints"][latest]["tensors"].items()
        if s["dtype"] != "string"
    )
    _same_bytes(np.asarray(trackpoint.load_variable(manager, key)), expected_value(spec))


def test_load_variable_ignores_colon_zero():
    prefix = FIXTURES / "tf1_partitioned" / "model.ckpt-7"
    assert trackpoint.load_variable(prefix, "global_step:0") == trackpoint.load_variable(
        prefix, "global_step"
    )


def test_list_variables_is_sorted_and_complete():
    variables = trackpoint.list_variables(FIXTURES / "many_keys" / "ckpt")
    names = [n for n, _ in variables]
    assert names == sorted(names)
    assert len(names) == len(load_expected("many_keys")["checkpoints"]["ckpt"]["tensors"])


def test_missing_checkpoint_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        trackpoint.load_checkpoint(tmp_path / "nope")
    assert isinstance(info.value, errors.NotFoundError)
    assert "nope.index" in str(info.value)


def test_directory_without_checkpoints_is_value_error(tmp_path):
    with pytest.raises(ValueError, match="Couldn't find 'checkpoint' file"):
        trackpoint.load_checkpoint(tmp_path)


def test_missing_key_is_not_found():
    reader = trackpoint.load_checkpoint(FIXTURES / "worked_example" / "tv")
    assert not reader.has_tensor("nope")
    assert reader.has_tensor("v/.ATTRIBUTES/VARIABLE_VALUE")
    with pytest.raises(errors.NotFoundError, match="Key nope not found in checkpoint"):
        reader.get_tensor("nope")


def test_missing_shard_is_file_not_found(tmp_path):
    src = FIXTURES / "multishard"
    for f in src.iterdir():
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "ckpt.data-00003-of-00007").unlink()
    reader = trackpoint.load_checkpoint(tmp_path / "ckpt")
    failures = []
    for key in reader.get_variable_to_shape_map():
        try:
            reader.get_tensor(key)
        except FileNotFoundError as e:
            failures.append(str(e))
    assert failures and all("ckpt.data-00003-of-00007" in f for f in failures)


def test_mmap_views_are_zero_copy_read_only_and_verified(tmp_path):
    big = np.arange(1 << 18, dtype=np.float32)  # 1 MiB
    small = np.arange(4, dtype=np.int64)
    with trackpoint.bundle.BundleWriter(tmp_path / "c") as w:
        w.add("big", big)
        w.add("small", small)
    reader = trackpoint.load_checkpoint(tmp_path / "c", mmap=True)
    view = reader.get_tensor("big")
    assert isinstance(view, np.memmap) and not view.flags.writeable
    np.testing.assert_array_equal(view, big)
    assert not isinstance(reader.get_tensor("small"), np.memmap)  # below the threshold
    del view
    data = tmp_path / "c.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[1000] ^= 1
    data.write_bytes(bytes(raw))
    with pytest.raises(errors.DataLossError, match="'big'"):
        trackpoint.load_checkpoint(tmp_path / "c", mmap=True).get_tensor("big")
