"""Resource state written by real TensorFlow 2.21 (tests/fixtures/tf_state/,
written by tests/fixtures/generate_tf_state.py): lookup tables and a tf.data
iterator, read, verified, shown and restored through the Trackable protocol.

TF records such objects with one object-graph attribute (``table``,
``ITERATOR``) whose checkpoint key the stored keys extend by a suffix
(``table-keys``/``table-values``, ``ITERATOR_STATE``). A StaticHashTable
saves nothing (its contents come from its initializer).
"""

import base64
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import FIXTURES, TF_PYTHON, expected_value

import trackpoint
from trackpoint.bundle import BundleReader, BundleWriter
from trackpoint.errors import NotFoundError

TABLES = FIXTURES / "tf_state" / "tables"
ITERATOR = FIXTURES / "tf_state" / "iterator"
PYTHONPATH = os.path.dirname(os.path.dirname(trackpoint.__file__))


def expected(d):
    return json.loads((d / "expected.json").read_text())


def cli(*args):
    """Runs ``python -m trackpoint ARGS`` in a real subprocess."""
    env = dict(os.environ, PYTHONPATH=PYTHONPATH)
    return subprocess.run([sys.executable, "-m", "trackpoint", *map(str, args)], check=False,
                          capture_output=True, text=True, env=env)


class Table(trackpoint.Trackable):
    """A dict saved the way TF's hash tables save themselves: tensors
    ``table-keys`` and ``table-values``. ``empty_key``/``deleted_key`` mark
    unused buckets of a DenseHashTable export."""

    def __init__(self, key_dtype, value_dtype, empty_key=None, deleted_key=None):
        self.key_dtype, self.value_dtype = key_dtype, value_dtype
        self.skip = {k for k in (empty_key, deleted_key) if k is not None}
        self.data = {}

    def _serialize_to_tensors(self):
        keys = np.array(list(self.data), dtype=self.key_dtype)
        values = np.array(list(self.data.values()), dtype=self.value_dtype)
        return {"table-keys": keys, "table-values": values}

    def _restore_from_tensors(self, tensors):
        keys = tensors["table-keys"].reshape(-1).tolist()
        values = tensors["table-values"].reshape(-1).tolist()
        self.data = {k: v for k, v in zip(keys, values) if k not in self.skip}


class IteratorState(trackpoint.Trackable):
    """Holds a tf.data iterator's serialized state, as TF names it."""

    def __init__(self):
        self.state = None

    def _serialize_to_tensors(self):
        return {"ITERATOR_STATE": self.state}

    def _tensor_names(self):
        return ["ITERATOR_STATE"]

    def _restore_from_tensors(self, tensors):
        self.state = tensors["ITERATOR_STATE"]


def tf_tables():
    return {"mutable": Table(object, np.int64),
            "dense": Table(np.int64, np.float32, empty_key=-1, deleted_key=-2)}


# ---- tables ---------------------------------------------------------------------------------


def test_tensorflow_saves_mutable_and_dense_tables_but_not_static_ones():
    ckpt = expected(TABLES)["checkpoints"]["ckpt"]
    assert expected(TABLES)["static_saved"] is False
    attributes = {tuple(a) for node in ckpt["object_graph"] for a in node["attributes"]}
    assert ("table", "mutable/.ATTRIBUTES/table") in attributes
    assert ("table", "dense/.ATTRIBUTES/table") in attributes
    assert not [k for k in trackpoint.load_checkpoint(TABLES / "ckpt").keys() if "static" in k]


def test_load_checkpoint_reads_table_tensors_as_tensorflow_does():
    ckpt = expected(TABLES)["checkpoints"]["ckpt"]
    reader = trackpoint.load_checkpoint(TABLES / "ckpt")
    assert sorted(reader.keys()) == sorted(ckpt["tensors"])
    for key, spec in ckpt["tensors"].items():
        if key == "_CHECKPOINTABLE_OBJECT_GRAPH":
            continue
        value = np.asarray(reader.get_tensor(key))
        want = expected_value(spec)
        assert value.shape == want.shape, key
        assert value.dtype == want.dtype, key
        assert value.tobytes() == want.tobytes() if want.dtype != object else \
            value.tolist() == want.tolist(), key
    assert reader.get_tensor("mutable/.ATTRIBUTES/table-keys").tolist() == [
        b"cherry", b"banana", b"apple"]


def test_debug_string_is_tensorflows():
    for d in (TABLES, ITERATOR):
        for name, ckpt in expected(d)["checkpoints"].items():
            reader = trackpoint.load_checkpoint(d / name)
            assert reader.debug_string() == ckpt["debug_string"].encode("utf-8")


def test_verify_accepts_table_checkpoints():
    result = cli("verify", TABLES / "ckpt")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: 6 tensors")


def test_graph_shows_the_suffixed_tensors_of_a_table():
    result = cli("graph", TABLES / "ckpt")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "├── dense  table-keys: int64[8, 1], table-values: float32[8, 1]" in lines
    assert "├── mutable  table-keys: string[3], table-values: int64[3]" in lines
    assert "MISSING" not in result.stdout
    nodes = json.loads(cli("graph", "--json", TABLES / "ckpt").stdout)["nodes"]
    (attribute,) = nodes[2]["attributes"]
    assert attribute["name"] == "table"
    assert [t["key"] for t in attribute["tensors"]] == [
        "mutable/.ATTRIBUTES/table-keys", "mutable/.ATTRIBUTES/table-values"]
    assert [t["suffix"] for t in attribute["tensors"]] == ["-keys", "-values"]


def test_tables_restore_into_a_python_table_through_the_protocol():
    restored = expected(TABLES)["restored"]  # what TF's own tables hold after restore
    tables = tf_tables()
    v = trackpoint.Variable([0.0, 0.0])
    status = trackpoint.Checkpoint(v=v, **tables).read(TABLES / "ckpt")
    status.assert_existing_objects_matched()
    assert tables["mutable"].data == {k.encode(): v for k, v in restored["mutable"].items()}
    assert len(tables["mutable"].data) == restored["mutable_size"]
    want_dense = {int(k): v for k, v in restored["dense"].items() if v != -1.0}  # -1: default
    assert tables["dense"].data == want_dense
    assert len(tables["dense"].data) == restored["dense_size"]
    assert v.numpy().tolist() == [1.0, 2.0]


def test_a_table_written_by_trackpoint_restores_into_a_table(tmp_path):
    table = Table(object, np.int64)
    table.data = {b"x": 7, b"yy": -1}
    trackpoint.Checkpoint(t=table).write(tmp_path / "ckpt")
    again = Table(object, np.int64)
    trackpoint.Checkpoint(t=again).read(tmp_path / "ckpt").assert_consumed()
    assert again.data == table.data
    assert cli("verify", tmp_path / "ckpt").returncode == 0


def _copy_without(src_prefix, dst_prefix, dropped):
    """A copy of a bundle (object graph included) without the key `dropped`."""
    reader = BundleReader(src_prefix)
    with BundleWriter(dst_prefix) as writer:
        for key in reader.keys():
            if key != dropped:
                entry = reader.entry(key)
                writer.add(key, reader.read(key), dtype=entry.dtype)


def test_a_missing_tensor_raises_not_found_naming_file_and_key(tmp_path):
    prefix = tmp_path / "ckpt"
    _copy_without(TABLES / "ckpt", prefix, "mutable/.ATTRIBUTES/table-values")
    tables = tf_tables()
    with pytest.raises(NotFoundError) as info:
        trackpoint.Checkpoint(**tables).read(prefix)
    message = str(info.value)
    assert "mutable/.ATTRIBUTES/table-values not found in checkpoint" in message
    assert str(prefix) in message
    assert tables["mutable"].data == {}


def test_a_variable_key_missing_from_the_bundle_raises_not_found(tmp_path):
    prefix = tmp_path / "ckpt"
    _copy_without(TABLES / "ckpt", prefix, "v/.ATTRIBUTES/VARIABLE_VALUE")
    with pytest.raises(NotFoundError, match="v/.ATTRIBUTES/VARIABLE_VALUE not found in checkpoint"):
        trackpoint.Checkpoint(v=trackpoint.Variable([0.0, 0.0])).read(prefix)
    result = cli("verify", prefix)
    assert result.returncode == 1
    assert "'v/.ATTRIBUTES/VARIABLE_VALUE', which the checkpoint does not hold" in result.stdout


def test_verify_still_reports_an_attribute_with_no_stored_key(tmp_path):
    prefix = tmp_path / "ckpt"
    _copy_without(TABLES / "ckpt", prefix, "dense/.ATTRIBUTES/table-keys")
    reader = BundleReader(prefix)
    assert reader.stored_keys("dense/.ATTRIBUTES/table") == ["dense/.ATTRIBUTES/table-values"]
    _copy_without(prefix, tmp_path / "none", "dense/.ATTRIBUTES/table-values")
    result = cli("verify", tmp_path / "none")
    assert result.returncode == 1
    assert "node 1 attribute 'table' names key 'dense/.ATTRIBUTES/table'" in result.stdout


# ---- tf.data iterator (DT_VARIANT) ----------------------------------------------------------


def iterator_elements(name):
    spec = expected(ITERATOR)["checkpoints"][name]["tensors"]["it/.ATTRIBUTES/ITERATOR_STATE"]
    return spec, [base64.b64decode(e) for e in spec["base64"]]


def test_variant_tensors_read_as_their_serialized_elements():
    spec, elements = iterator_elements("ckpt")
    reader = trackpoint.load_checkpoint(ITERATOR / "ckpt")
    assert reader.get_variable_to_dtype_map()["it/.ATTRIBUTES/ITERATOR_STATE"].name == "variant"
    assert reader.get_variable_to_shape_map()["it/.ATTRIBUTES/ITERATOR_STATE"] == spec["shape"]
    value = reader.get_tensor("it/.ATTRIBUTES/ITERATOR_STATE")
    assert value.dtype == object and value.shape == (3,)
    assert value.tolist() == elements
    assert all(e.startswith(b"\n\x14tensorflow::Iterator") for e in elements)


def test_verify_checks_the_crc_of_variant_tensors(tmp_path):
    assert cli("verify", ITERATOR / "ckpt").returncode == 0
    shutil.copytree(ITERATOR, tmp_path / "it")
    data = tmp_path / "it" / "ckpt.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[40] ^= 0x01  # inside the first element's proto
    data.write_bytes(bytes(raw))
    result = cli("verify", tmp_path / "it" / "ckpt")
    assert result.returncode == 1
    assert "BAD it/.ATTRIBUTES/ITERATOR_STATE: " in result.stdout
    assert "checksum does not match" in result.stdout
    with pytest.raises(trackpoint.DataLossError, match="variant element 0"):
        trackpoint.load_checkpoint(tmp_path / "it" / "ckpt").get_tensor(
            "it/.ATTRIBUTES/ITERATOR_STATE")


def test_diff_compares_variant_bytes():
    same = cli("diff", ITERATOR / "ckpt", ITERATOR / "ckpt")
    assert same.returncode == 0, same.stderr
    assert "0 changed, 2 identical" in same.stdout
    _, before = iterator_elements("ckpt")
    _, after = iterator_elements("ckpt5")
    differing = sum(a != b for a, b in zip(before, after))
    assert differing > 0
    result = cli("diff", "--json", ITERATOR / "ckpt", ITERATOR / "ckpt5")
    assert result.returncode == 1, result.stderr
    changed = {c["key"]: c for c in json.loads(result.stdout)["changed"]}
    assert changed["it/.ATTRIBUTES/ITERATOR_STATE"]["differing"] == differing
    assert changed["it/.ATTRIBUTES/ITERATOR_STATE"]["elements"] == 3


def test_inspect_shows_variant_tensors():
    spec, _ = iterator_elements("ckpt")
    result = cli("inspect", ITERATOR / "ckpt")
    assert result.returncode == 0, result.stderr
    row = [line.split() for line in result.stdout.splitlines()
           if line.startswith("it/.ATTRIBUTES/ITERATOR_STATE")]
    assert row == [["it/.ATTRIBUTES/ITERATOR_STATE", "variant", "[3]", str(spec["size"])]]
    tensors = json.loads(cli("inspect", "--json", ITERATOR / "ckpt").stdout)["tensors"]
    item = next(t for t in tensors if t["key"] == "it/.ATTRIBUTES/ITERATOR_STATE")
    assert item == {"key": "it/.ATTRIBUTES/ITERATOR_STATE", "dtype": "variant", "shape": [3],
                    "bytes": spec["size"]}


def test_graph_and_verify_accept_the_iterator_attribute():
    result = cli("graph", "--keys", ITERATOR / "ckpt")
    assert result.returncode == 0, result.stderr
    assert "└── it  ITERATOR_STATE: variant[3]  (it/.ATTRIBUTES/ITERATOR_STATE)" in result.stdout


def test_iterator_state_restores_through_the_protocol():
    _, elements = iterator_elements("ckpt")
    state = IteratorState()
    trackpoint.Checkpoint(it=state).read(ITERATOR / "ckpt").assert_consumed()
    assert state.state.tolist() == elements


# ---- V1 format (SaverDef.V1: one file, SavedTensorSlices) -----------------------------------

V1 = FIXTURES / "tf1_v1format"


def v1_expected(name):
    return expected(V1)["checkpoints"][name]


def test_v1_list_variables_and_dtypes_are_tensorflows():
    ckpt = v1_expected("dtypes")
    assert trackpoint.list_variables(V1 / "dtypes") == [
        (key, spec["shape"]) for key, spec in sorted(ckpt["tensors"].items())]
    dtypes = trackpoint.load_checkpoint(V1 / "dtypes").get_variable_to_dtype_map()
    assert {k: d.name for k, d in dtypes.items()} == {
        k: spec["dtype"] for k, spec in ckpt["tensors"].items()}


def test_v1_tensors_read_as_tensorflow_reads_them_and_as_written():
    ckpt = v1_expected("dtypes")
    reader = trackpoint.load_checkpoint(V1 / "dtypes")
    unreadable_by_tf = []
    for key, spec in ckpt["tensors"].items():
        value = np.asarray(reader.get_tensor(key))
        if "tf_error" in spec:
            unreadable_by_tf.append(key)
        else:  # what TF's reader returned
            want = expected_value(spec)
            assert value.dtype == want.dtype and value.shape == want.shape, key
            assert value.tolist() == want.tolist(), key
        written = expected_value(ckpt["written"][key])  # the session's value
        assert value.dtype == written.dtype and value.shape == written.shape, key
        assert value.tolist() == written.tolist(), key
    # TF 2.21 cannot read these three back; trackpoint can.
    assert sorted(unreadable_by_tf) == ["complex64", "float16", "partitioned"]
    assert reader.get_tensor("partitioned").tolist() == np.arange(20).reshape(10, 2).tolist()


def test_v1_debug_string_has_tensorflows_lines():
    for name in ("dtypes", "ckpt_for_debug_string"):
        ours = trackpoint.load_checkpoint(V1 / name).debug_string().splitlines()
        tf_lines = v1_expected(name)["debug_string"].encode().splitlines()
        assert ours == sorted(tf_lines)  # TF prints them in hash order
    dtypes = trackpoint.load_checkpoint(V1 / "dtypes").debug_string().splitlines()
    assert b"partitioned (DT_FLOAT) [10,2], 3 slices" in dtypes
    assert b"float16 (DT_HALF) [3]" in dtypes


def test_v1_name_based_restore():
    class Model(trackpoint.AutoTrackable):
        pass

    model = Model()
    model.a = trackpoint.Variable(np.zeros((2, 3), np.float32), name="float32")
    model.b = trackpoint.Variable(np.zeros((3, 2), np.int32), name="scope/nested")
    model.c = trackpoint.Variable(np.zeros(10 * 2, np.float32).reshape(10, 2), name="partitioned")
    model.d = trackpoint.Variable([b"", b"", b"", b""], name="string")
    status = trackpoint.Checkpoint(model=model).read(V1 / "dtypes")
    assert isinstance(status, trackpoint.NameBasedSaverStatus)
    status.assert_consumed()
    written = v1_expected("dtypes")["written"]
    for var, name in ((model.a, "float32"), (model.b, "scope/nested"),
                      (model.c, "partitioned"), (model.d, "string")):
        assert var.numpy().tolist() == expected_value(written[name]).tolist(), name


def test_v1_verify_and_corruption(tmp_path):
    result = cli("verify", V1 / "dtypes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: 15 tensors")
    raw = bytearray((V1 / "dtypes").read_bytes())
    raw[100] ^= 0x10  # inside the data block: its CRC no longer matches
    (tmp_path / "dtypes").write_bytes(bytes(raw))
    with pytest.raises(trackpoint.DataLossError, match="checksum"):
        reader = trackpoint.load_checkpoint(tmp_path / "dtypes")
        for key in reader.keys():
            reader.get_tensor(key)
    assert cli("verify", tmp_path / "dtypes").returncode == 1


def test_a_file_that_is_not_a_checkpoint_is_data_loss(tmp_path):
    (tmp_path / "junk").write_bytes(b"not a table" * 10)
    with pytest.raises(trackpoint.DataLossError, match="is not a V1 checkpoint"):
        trackpoint.load_checkpoint(tmp_path / "junk")
    (tmp_path / "short").write_bytes(b"")
    with pytest.raises(trackpoint.DataLossError, match="junk|short"):
        trackpoint.load_checkpoint(tmp_path / "short")
    # A bundle's own index passed as a prefix is still "not found", not V1.
    with pytest.raises(NotFoundError, match="Unsuccessful TensorSliceReader"):
        trackpoint.load_checkpoint(str(TABLES / "ckpt") + ".index")


def test_a_shape_mismatch_keeps_tensorflows_words_and_names_both_shapes():
    v = trackpoint.Variable(np.zeros(3, np.float32))
    with pytest.raises(trackpoint.errors.InvalidArgumentError) as info:
        trackpoint.Checkpoint(v=v).read(TABLES / "ckpt")
    message = str(info.value)
    assert "Received incompatible tensor with shape [2] when attempting to restore " \
           "variable with shape [3]" in message
    assert "'v/.ATTRIBUTES/VARIABLE_VALUE'" in message and str(TABLES / "ckpt") in message
    assert "checkpoint has float32[2], object has float32[3]" in message


TF_RESTORE_TABLE = r"""
import json, sys
import tensorflow as tf
table = tf.lookup.experimental.MutableHashTable(tf.string, tf.int64, default_value=-1)
tf.train.Checkpoint(t=table).read(sys.argv[1]).assert_consumed()
keys = [b"x", b"yy", b"absent"]
print(json.dumps([int(table.lookup(tf.constant(k)).numpy()) for k in keys]))
"""


def test_tensorflow_restores_a_table_trackpoint_wrote(tmp_path):
    python = TF_PYTHON
    if python is None:
        pytest.skip("TensorFlow is not available (set TRACKPOINT_TF_PYTHON)")
    table = Table(object, np.int64)
    table.data = {b"x": 7, b"yy": -3}
    trackpoint.Checkpoint(t=table).write(tmp_path / "ckpt")
    result = subprocess.run([python, "-c", TF_RESTORE_TABLE, str(tmp_path / "ckpt")], check=False,
                            capture_output=True, text=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[-1]) == [7, -3, -1]


# ---- registered savers ----------------------------------------------------------------------

REGISTERED = FIXTURES / "tf_state" / "registered"


def test_registered_saver_checkpoints_read_verify_and_show():
    ckpt = expected(REGISTERED)["checkpoints"]["ckpt"]
    reader = trackpoint.load_checkpoint(REGISTERED / "ckpt")
    assert reader.debug_string() == ckpt["debug_string"].encode()
    for key, spec in ckpt["tensors"].items():
        if key != "_CHECKPOINTABLE_OBJECT_GRAPH":
            assert np.asarray(reader.get_tensor(key)).tolist() == expected_value(spec).tolist()
    assert reader.get_tensor("p/value").tolist() == [1.0, 2.0]  # the saver's own key
    assert cli("verify", REGISTERED / "ckpt").returncode == 0
    result = cli("graph", REGISTERED / "ckpt")
    assert result.returncode == 0, result.stderr
    assert "├── p  registered saver 'Custom.PartSaver' (object name 'p')" in result.stdout
    nodes = json.loads(cli("graph", "--json", REGISTERED / "ckpt").stdout)["nodes"]
    saver = [n["registered_saver"] for n in nodes if "registered_saver" in n]
    assert saver == [expected(REGISTERED)["registered_saver"]]
