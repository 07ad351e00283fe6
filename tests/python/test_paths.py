"""URLs are refused by every path-taking API instead of being written to a
local folder named after their scheme (s3://bucket/run -> ./s3:/bucket/run)."""

import os

import numpy as np
import pytest

import trackpoint
from trackpoint._paths import local_path
from trackpoint.bundle import BundleReader, BundleWriter
from trackpoint.errors import UnimplementedError


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_local_path_keeps_paths_and_opens_file_urls():
    assert local_path("run/ckpt") == "run/ckpt"
    assert local_path(b"run/ckpt") == "run/ckpt"
    assert local_path("file:///tmp/run") == "/tmp/run"
    assert local_path("weird:name/ckpt") == "weird:name/ckpt"  # no "://": a local name


@pytest.mark.parametrize("url", ["s3://bucket/run/ckpt", "gs://b/ckpt", "memory://x/ckpt",
                                 "S3://Bucket/ckpt"])
def test_local_path_refuses_other_urls(url):
    with pytest.raises(UnimplementedError, match="URLs are not supported") as e:
        local_path(url)
    assert url in str(e.value)
    assert isinstance(e.value, NotImplementedError)


URL_CALLS = {
    "Checkpoint.save": lambda: trackpoint.Checkpoint(v=trackpoint.Variable(1.0)).save(
        "s3://bucket/run/ckpt"),
    "Checkpoint.write": lambda: trackpoint.Checkpoint(v=trackpoint.Variable(1.0)).write(
        "s3://bucket/run/ckpt"),
    "Checkpoint.restore": lambda: trackpoint.Checkpoint().restore("s3://bucket/run/ckpt-1"),
    "Checkpoint.read": lambda: trackpoint.Checkpoint().read("s3://bucket/run/ckpt-1"),
    "CheckpointManager.save": lambda: trackpoint.CheckpointManager(
        trackpoint.Checkpoint(v=trackpoint.Variable(1.0)), "s3://bucket/run", 3).save(),
    "latest_checkpoint": lambda: trackpoint.latest_checkpoint("s3://bucket/run"),
    "get_checkpoint_state": lambda: trackpoint.get_checkpoint_state("s3://bucket/run"),
    "update_checkpoint_state": lambda: trackpoint.update_checkpoint_state(
        "s3://bucket/run", "s3://bucket/run/ckpt-1"),
    "load_checkpoint": lambda: trackpoint.load_checkpoint("s3://bucket/run"),
    "list_variables": lambda: trackpoint.list_variables("s3://bucket/run"),
    "load_variable": lambda: trackpoint.load_variable("s3://bucket/run", "v"),
    "BundleWriter": lambda: BundleWriter("s3://bucket/run/w"),
    "BundleReader": lambda: BundleReader("s3://bucket/run/w"),
}


@pytest.mark.parametrize("name", sorted(URL_CALLS))
def test_every_path_api_refuses_a_url_and_writes_nothing(in_tmp, name):
    with pytest.raises(UnimplementedError, match="s3://"):
        URL_CALLS[name]()
    assert os.listdir(in_tmp) == []  # no ./s3: folder


def test_file_url_saves_and_restores(tmp_path):
    v = trackpoint.Variable(np.float32(3.0))
    path = trackpoint.Checkpoint(v=v).write(f"file://{tmp_path}/ckpt")
    assert os.path.exists(tmp_path / "ckpt.index")
    assert trackpoint.load_variable(path, "v/.ATTRIBUTES/VARIABLE_VALUE") == 3.0
