"""The ``trackpoint`` command, run as a subprocess (``python -m trackpoint``):
every subcommand, its output and its error paths (one line on stderr, exit
status 2, never a traceback)."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

import trackpoint
from trackpoint.bundle import BundleWriter

from conftest import FIXTURES

TV = FIXTURES / "worked_example/tv"
V = "v/.ATTRIBUTES/VARIABLE_VALUE"


def run(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "trackpoint", *map(str, args)],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=300,
        check=False,
    )


def assert_user_error(proc, *fragments):
    assert proc.returncode == 2, proc
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("trackpoint")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# ---- the command itself ---------------------------------------------------------------------


def test_help_lists_every_subcommand():
    proc = run("--help")
    assert proc.returncode == 0
    for command in ("inspect", "graph", "verify", "diff", "convert"):
        assert command in proc.stdout


def test_version():
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"trackpoint {trackpoint.__version__}"


@pytest.mark.parametrize(
    "argv", [[], ["frobnicate"], ["inspect"], ["diff", TV], ["inspect", TV, "--bogus"]]
)
def test_usage_errors_are_one_line(argv):
    assert_user_error(run(*argv))


def test_debug_shows_the_traceback(tmp_path):
    proc = run("--debug", "inspect", tmp_path / "nope")
    assert proc.returncode != 0 and "Traceback" in proc.stderr


# ---- inspect --------------------------------------------------------------------------------


def test_inspect_lists_keys_dtypes_shapes_bytes():
    proc = run("inspect", TV)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["KEY", "DTYPE", "SHAPE", "BYTES"]
    assert lines[3].split() == [V, "float32", "[2]", "8"]
    assert lines[2].split()[:3] == ["s/.ATTRIBUTES/VARIABLE_VALUE", "string", "[2]"]
    assert lines[-1].startswith("# 3 tensors, 5 elements")


def test_inspect_tensor_prints_like_tensorflow():
    proc = run("inspect", TV, "--tensor", V)
    assert proc.returncode == 0
    assert proc.stdout == f"tensor: {V} (float32) [2]\n[1. 2.]\n# Total number of params: 2\n"


def test_inspect_all_prints_every_value():
    proc = run("inspect", FIXTURES / "byte_identity/bundle", "--all")
    assert proc.returncode == 0, proc.stderr
    assert (
        "tensor: weights (float32) [2, 3]\n[[-0.5  -0.25  0.  ]\n [ 0.25  0.5   0.75]]\n"
        in proc.stdout
    )
    assert "tensor: global_step (int64) []\n1234567\n" in proc.stdout
    assert proc.stdout.endswith("# Total number of params: 50\n")


def test_inspect_json():
    proc = run(
        "inspect",
        FIXTURES / "byte_identity/bundle",
        "--json",
        "-t",
        "z",
        "-t",
        "blob",
        "-t",
        "bf16",
        "-t",
        "mask",
        "-t",
        "global_step",
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["format"] == "tf" and out["path"].endswith("bundle")
    tensors = {t["key"]: t for t in out["tensors"]}
    assert len(tensors) == 18
    assert tensors["weights"] == {
        "key": "weights",
        "dtype": "float32",
        "shape": [2, 3],
        "bytes": 24,
    }
    assert tensors["z"]["value"] == [[1.0, 2.0], [-0.5, -0.25]]
    assert tensors["bf16"]["value"] == [[1.0, -0.5], [3.0, 256.0]]
    assert tensors["mask"]["value"] == [True, False, False, True]
    assert tensors["global_step"]["value"] == 1234567
    blob = tensors["blob"]["value"]
    assert blob[0] == {
        "base64": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v"
        "MDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5f"
        "YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn+AgYKDhIWGh4iJiouMjY6P"
        "kJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmqq6ytrq+wsbKztLW2t7i5uru8vb6/"
        "wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd3t/g4eLj5OXm5+jp6uvs7e7v"
        "8PHy8/T19vf4+fr7/P3+/w=="
    }
    assert blob[1] == "\0\0\0"
    assert out["total_elements"] == 50


def test_inspect_json_non_finite_floats():
    proc = run(
        "inspect",
        FIXTURES / "dtypes/ckpt",
        "--json",
        "-t",
        "float32_special/.ATTRIBUTES/VARIABLE_VALUE",
    )
    value = next(t["value"] for t in json.loads(proc.stdout)["tensors"] if "value" in t)
    flat = [x for row in value for x in row] if isinstance(value[0], list) else value
    assert "nan" in flat and "inf" in flat and "-inf" in flat


def test_inspect_other_formats_and_paths(tmp_path):
    assert run("convert", TV, tmp_path / "w.safetensors", "--exclude", "^s/").returncode == 0
    proc = run("inspect", tmp_path / "w.safetensors")
    assert (
        proc.returncode == 0 and f"{V}  float32" in proc.stdout and "(safetensors)" in proc.stdout
    )
    # An unknown extension: the first bytes tell, or --from does.
    shutil.copy(tmp_path / "w.safetensors", tmp_path / "w.weights")
    assert run("inspect", tmp_path / "w.weights").returncode == 0
    assert run("inspect", tmp_path / "w.weights", "--from", "safetensors").returncode == 0
    (tmp_path / "junk.dat").write_bytes(b"junk")
    assert_user_error(run("inspect", tmp_path / "junk.dat"), "cannot tell the format", "--from")
    # A directory means its latest checkpoint; an .index path its prefix.
    proc = run("inspect", FIXTURES / "manager")
    assert proc.returncode == 0 and "ckpt-5 (tf)" in proc.stdout
    assert run("inspect", str(TV) + ".index").returncode == 0


def test_inspect_errors(tmp_path):
    assert_user_error(run("inspect", tmp_path / "nope"), "nope.index")
    assert_user_error(run("inspect", tmp_path), "no checkpoint")
    assert_user_error(run("inspect", TV, "--tensor", "v"), "no tensor 'v'", V)
    assert_user_error(run("inspect", TV, "--from", "hdf5"), "unknown format")
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 20)
    assert_user_error(run("inspect", tmp_path / "junk.safetensors"), "junk.safetensors")


# ---- graph ----------------------------------------------------------------------------------


def test_graph_tree():
    proc = run("graph", FIXTURES / "objects/nested/ckpt")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "(root)"
    assert "├── extra" in lines[1]
    assert "│   ├── kernel_ref  float32[2, 3]" in lines
    assert "    ├── tied -> extra/kernel_ref" in lines
    assert any(line.endswith("hooks  (no values)") for line in lines)
    assert any("a/b  int32[]" in line for line in lines)


def test_graph_slots_keys_and_skip_empty():
    proc = run("graph", FIXTURES / "objects/slots/ckpt", "--keys")
    assert proc.returncode == 0
    assert (
        "    ├── slot 'm' of model/w  float32[3, 2]  "
        "(model/w/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE)"
    ) in proc.stdout
    proc = run("graph", FIXTURES / "objects/nested/ckpt", "--skip-empty")
    assert "hooks" not in proc.stdout and "aux" not in proc.stdout and "kernel_ref" in proc.stdout


def test_graph_json():
    proc = run("graph", FIXTURES / "objects/slots/ckpt", "--json")
    nodes = json.loads(proc.stdout)["nodes"]
    assert nodes[0]["path"] == "" and {c["name"] for c in nodes[0]["children"]} == {
        "model",
        "optimizer",
    }
    optimizer = next(n for n in nodes if n["path"] == "optimizer")
    assert len(optimizer["slot_variables"]) == 4
    w = next(n for n in nodes if n["path"] == "model/w")
    assert w["attributes"] == [
        {
            "name": "VARIABLE_VALUE",
            "key": "model/w/.ATTRIBUTES/VARIABLE_VALUE",
            "dtype": "float32",
            "shape": [3, 2],
        }
    ]


def test_graph_errors(tmp_path):
    assert_user_error(run("graph", FIXTURES / "byte_identity/bundle"), "no object graph")
    assert_user_error(run("graph", tmp_path / "nope"), "nope")


# ---- verify ---------------------------------------------------------------------------------


def test_verify_ok():
    proc = run("verify", FIXTURES / "multishard/ckpt")
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.startswith("OK: 7 tensors")


def _flip(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_verify_names_every_bad_tensor(tmp_path):
    shutil.copytree(FIXTURES / "byte_identity", tmp_path / "c")
    reader = trackpoint.bundle.BundleReader(tmp_path / "c/bundle")
    data = tmp_path / "c/bundle.data-00000-of-00001"
    for key in ("weights", "labels"):
        _flip(data, reader.entry(key).offset + 1)
    proc = run("verify", tmp_path / "c/bundle")
    assert proc.returncode == 1
    bad = [line for line in proc.stdout.splitlines() if line.startswith("BAD ")]
    assert [line.split(":")[0] for line in bad] == ["BAD labels", "BAD weights"]
    assert "checksum" in bad[1]
    assert proc.stdout.splitlines()[-1].startswith("FAILED: 2 problem(s)")
    out = json.loads(run("verify", tmp_path / "c/bundle", "--json").stdout)
    assert out["ok"] is False and [e["key"] for e in out["errors"]] == ["labels", "weights"]


def test_verify_missing_data_file_and_corrupt_index(tmp_path):
    shutil.copytree(FIXTURES / "multishard", tmp_path / "m")
    (tmp_path / "m/ckpt.data-00002-of-00007").unlink()
    proc = run("verify", tmp_path / "m/ckpt")
    assert proc.returncode == 1 and "data-00002-of-00007" in proc.stdout
    shutil.copytree(FIXTURES / "worked_example", tmp_path / "w")
    _flip(tmp_path / "w/tv.index", 20)
    proc = run("verify", tmp_path / "w/tv")
    assert proc.returncode == 1 and proc.stdout.startswith("BAD (index): ")


def test_verify_checks_the_object_graph_keys(tmp_path):
    graph = trackpoint.bundle.BundleReader(TV).read("_CHECKPOINTABLE_OBJECT_GRAPH")
    with BundleWriter(tmp_path / "ckpt") as w:
        w.add("_CHECKPOINTABLE_OBJECT_GRAPH", graph)
        w.add(V, np.array([1.0, 2.0], np.float32))
    proc = run("verify", tmp_path / "ckpt")
    assert proc.returncode == 1
    assert "s/.ATTRIBUTES/VARIABLE_VALUE" in proc.stdout and "does not hold" in proc.stdout


def test_verify_errors(tmp_path):
    assert_user_error(run("verify", tmp_path / "nope"), "nope")


# ---- diff -----------------------------------------------------------------------------------


def test_diff_identical():
    proc = run("diff", TV, str(TV) + ".index")
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.splitlines()[-1] == "0 removed, 0 added, 0 changed, 3 identical"


def test_diff_reports_every_kind_of_change(tmp_path):
    with BundleWriter(tmp_path / "a") as w:
        w.add("same", np.arange(3, dtype=np.int64))
        w.add("gone", np.zeros(2, np.float32))
        w.add("retyped", np.zeros(2, np.float32))
        w.add("reshaped", np.zeros((2, 3), np.float32))
        w.add("values", np.array([1.0, 2.0, np.nan, -0.0], np.float32))
        w.add("words", [b"a", b"b"])
    with BundleWriter(tmp_path / "b") as w:
        w.add("same", np.arange(3, dtype=np.int64))
        w.add("new", np.zeros(1, np.int8))
        w.add("retyped", np.zeros(2, np.float64))
        w.add("reshaped", np.zeros((3, 2), np.float32))
        w.add("values", np.array([1.0, 2.5, np.nan, 0.0], np.float32))
        w.add("words", [b"a", b"c"])
    proc = run("diff", tmp_path / "a", tmp_path / "b")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert "- gone  float32[2]" in lines and "+ new  int8[1]" in lines
    assert "~ retyped  dtype float32 -> float64" in lines
    assert "~ reshaped  shape [2, 3] -> [3, 2]" in lines
    # Bit for bit: -0.0 and 0.0 differ, NaN matches NaN.
    assert "~ values  2 of 4 elements differ, max abs diff 0.5" in lines
    assert "~ words  1 of 2 elements differ" in lines
    assert lines[-1] == "1 removed, 1 added, 4 changed, 1 identical"
    # With a tolerance, only |a - b| > atol counts.
    proc = run("diff", tmp_path / "a", tmp_path / "b", "--atol", "0.6", "--json")
    changed = {c["key"]: c for c in json.loads(proc.stdout)["changed"]}
    assert "values" not in changed and set(changed) == {"retyped", "reshaped", "words"}
    proc = run("diff", tmp_path / "a", tmp_path / "b", "--shapes-only", "--json")
    assert {c["key"] for c in json.loads(proc.stdout)["changed"]} == {"retyped", "reshaped"}


def test_diff_across_formats(tmp_path):
    out = tmp_path / "w.npz"
    assert (
        run("convert", FIXTURES / "byte_identity/bundle", out, "--skip-unsupported").returncode == 0
    )
    proc = run("diff", FIXTURES / "byte_identity/bundle", out, "--json")
    result = json.loads(proc.stdout)
    assert result["changed"] == [] and result["added"] == []
    assert {r["key"] for r in result["removed"]} == {
        "bf16",
        "blob",
        "labels",
        "name",
        "empty_strings",
    }


def test_diff_errors(tmp_path):
    assert_user_error(run("diff", TV, tmp_path / "nope"), "nope")
    assert_user_error(run("diff", TV, TV, "--atol", "x"), "atol")


# ---- convert --------------------------------------------------------------------------------


def test_convert_round_trip_through_safetensors(tmp_path):
    src = FIXTURES / "dtypes/ckpt"
    proc = run("convert", src, tmp_path / "w.safetensors", "--skip-unsupported")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("wrote 30 tensors")
    assert "warning: skipped 'complex128/.ATTRIBUTES/VARIABLE_VALUE'" in proc.stderr
    assert "note: the object graph is not converted" in proc.stderr
    proc = run("convert", tmp_path / "w.safetensors", tmp_path / "back/ckpt")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(run("diff", src, tmp_path / "back/ckpt", "--json").stdout)
    assert result["added"] == []
    # Only the quantized types change: safetensors stores them as plain integers.
    assert {c["key"].split("/")[0]: c.get("dtype") for c in result["changed"]} == {
        "qint8": ["qint8", "int8"],
        "quint8": ["quint8", "uint8"],
        "qint32": ["qint32", "int32"],
    }


def test_convert_map_transpose_and_dry_run(tmp_path):
    with BundleWriter(tmp_path / "tf") as w:
        w.add("dense/kernel", np.arange(6, dtype=np.float32).reshape(2, 3))
        w.add("dense/bias", np.zeros(3, np.float32))
    args = [
        "convert",
        tmp_path / "tf",
        tmp_path / "w.npz",
        "--map",
        "/=.",
        "--map",
        r"kernel$=weight",
        "--transpose",
        "kernel$",
    ]
    proc = run(*args, "--dry-run")
    assert proc.returncode == 0
    assert "dense/kernel -> dense.weight  float32[3, 2]  (transposed 1,0)" in proc.stdout
    assert not (tmp_path / "w.npz").exists()
    assert run(*args).returncode == 0
    with np.load(tmp_path / "w.npz") as npz:
        assert sorted(npz.files) == ["dense.bias", "dense.weight"]
        assert npz["dense.weight"].tolist() == [[0, 3], [1, 4], [2, 5]]


def test_convert_to_pytorch(tmp_path):
    torch = pytest.importorskip("torch")
    proc = run(
        "convert",
        FIXTURES / "objects/slots/ckpt",
        tmp_path / "model.pt",
        "--preset",
        "tf-to-torch",
        "--exclude",
        "^optimizer/",
    )
    assert proc.returncode == 0, proc.stderr
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    assert sorted(state) == ["model.b", "model.frozen", "model.w"]
    reader = trackpoint.load_checkpoint(FIXTURES / "objects/slots/ckpt")
    assert (
        state["model.w"].numpy().tobytes()
        == reader.get_tensor("model/w/.ATTRIBUTES/VARIABLE_VALUE").tobytes()
    )


def test_convert_errors(tmp_path):
    dst = tmp_path / "w.safetensors"
    assert_user_error(
        run("convert", FIXTURES / "dtypes/ckpt", dst), "complex128", "--skip-unsupported"
    )
    assert not dst.exists()
    dst.write_bytes(b"x")
    assert_user_error(run("convert", TV, dst, "--exclude", "^s/"), "already exists", "--overwrite")
    assert run("convert", TV, dst, "--exclude", "^s/", "--overwrite").returncode == 0
    assert_user_error(run("convert", TV, tmp_path / "x", "--to", "hdf5"), "unknown format")
    assert_user_error(run("convert", TV, tmp_path / "x", "--map", "(=y"), "--map")
    assert_user_error(run("convert", TV, tmp_path / "x", "--map", "nothing"), "PATTERN=REPLACEMENT")
    assert_user_error(run("convert", TV, tmp_path / "x", "--map", ".*=k"), "sends both")
    assert_user_error(run("convert", TV, tmp_path / "x", "--transpose", "v/=2,0"), "do not fit")
    assert_user_error(run("convert", TV, tmp_path / "x", "--preset", "nope"), "preset")
    assert_user_error(run("convert", tmp_path / "missing", tmp_path / "x"), "missing")
    assert_user_error(run("convert", TV, tmp_path), "is a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]


# ---- verify: an overwrite interrupted by a crash ------------------------------------------


def _write_values(prefix, k):
    with BundleWriter(prefix) as w:
        w.add("x", np.full(1000, k, np.int32))


def test_verify_reports_an_interrupted_overwrite(tmp_path):
    # What a crash in the middle of an overwrite leaves: the old index gone,
    # the new index complete under its temporary name, one data file still old
    # (the new one beside it, not yet renamed).
    prefix = tmp_path / "p"
    _write_values(prefix, 1)
    old_data = (tmp_path / "p.data-00000-of-00001").read_bytes()
    _write_values(prefix, 2)
    (tmp_path / "p.index").rename(tmp_path / "p.index.tempstate42")
    (tmp_path / "p.data-00000-of-00001").rename(tmp_path / "p.data-00000-of-00001.tempstate7")
    (tmp_path / "p.data-00000-of-00001").write_bytes(old_data)
    proc = run("verify", prefix)
    assert proc.returncode == 1, proc
    assert proc.stdout.startswith(f"BAD (index): interrupted overwrite of {prefix}: ")
    for name in ("p.index.tempstate42", "p.data-00000-of-00001.tempstate7"):
        assert name in proc.stdout
    # From the directory, through the state file naming the prefix, and as JSON.
    trackpoint.update_checkpoint_state(tmp_path, str(prefix))
    out = json.loads(run("verify", tmp_path, "--json").stdout)
    assert out["ok"] is False and out["path"] == str(prefix)
    assert "interrupted overwrite" in out["errors"][0]["error"]
    # Doing what it says (data files first, then the index) completes the new one.
    (tmp_path / "p.data-00000-of-00001.tempstate7").rename(tmp_path / "p.data-00000-of-00001")
    proc = run("verify", prefix)
    assert "every data file is already the new one" in proc.stdout
    (tmp_path / "p.index.tempstate42").rename(tmp_path / "p.index")
    proc = run("verify", prefix)
    assert proc.returncode == 0 and proc.stdout.startswith("OK: 1 tensors"), proc
    assert (trackpoint.bundle.BundleReader(prefix).read("x") == 2).all()


def test_verify_of_a_missing_prefix_without_temporary_files_is_a_user_error(tmp_path):
    (tmp_path / "q.index.tempstate1").write_bytes(b"")  # another prefix's
    assert_user_error(run("verify", tmp_path / "p"), "p.index")


def test_verify_names_the_parts_of_an_interrupted_merge(tmp_path):
    # A multi-process save over p stopped before its parts' data files moved.
    _write_values(tmp_path / "p", 2)
    (tmp_path / "p.index").rename(tmp_path / "p.index.tempstate5")
    (tmp_path / "p_temp").mkdir()
    (tmp_path / "p.data-00000-of-00001").rename(
        tmp_path / "p_temp/part-00000-of-00001.data-00000-of-00001"
    )
    proc = run("verify", tmp_path / "p")
    assert proc.returncode == 1, proc
    assert "interrupted overwrite" in proc.stdout and "p.index.tempstate5" in proc.stdout
    assert f"still in {tmp_path / 'p_temp'} (part-00000-of-00001.data-00000-of-00001)" in (
        proc.stdout
    )


def test_inspect_and_convert_recognise_a_v1_checkpoint_without_from(tmp_path):
    """A TF1 V1-format checkpoint is one file with no extension: its table
    footer names it a TF checkpoint, as --from tf would."""
    v1 = FIXTURES / "tf1_v1format" / "ckpt_for_debug_string"
    proc = run("inspect", v1, "--json")
    assert proc.returncode == 0, proc.stderr
    listed = {t["key"]: t["shape"] for t in json.loads(proc.stdout)["tensors"]}
    assert listed == {"v0": [2, 3], "v1": [3, 2, 1]}
    out = tmp_path / "v1.npz"
    proc = run("convert", v1, out)
    assert proc.returncode == 0, proc.stderr
    with np.load(out) as npz:
        np.testing.assert_array_equal(npz["v1"], np.arange(1, 7, dtype=np.float32).reshape(3, 2, 1))
