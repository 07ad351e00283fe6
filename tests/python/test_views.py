"""CheckpointView and TrackableView, with the behaviour of TensorFlow's
checkpoint_view_test.py / trackable_view_test.py and the values TF 2.21
reported on tests/fixtures/tf_train/views/ (generate_tf_train.py)."""

import json
import logging
import subprocess
from pathlib import Path

import numpy as np
import pytest

import trackpoint
from conftest import TF_PYTHON, needs_tf

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tf_train" / "views"
RECORD = json.loads((FIXTURE / "views.json").read_text())


class Leafy(trackpoint.Trackable):
    """A plain Trackable with one named child, as TF's tests track one."""

    def __init__(self, leaf=None):
        self._self_leaf = leaf

    def _trackable_children(self):
        return {} if self._self_leaf is None else {"leaf": self._self_leaf}


class SimpleModule(trackpoint.AutoTrackable):
    def __init__(self):
        self.a_var = trackpoint.Variable(5.0)
        self.b_var = trackpoint.Variable(4.0)
        self.vars = [trackpoint.Variable(1.0), trackpoint.Variable(2.0)]


def docstring_root():
    root = SimpleModule()
    leaf = root.leaf = SimpleModule()
    leaf.leaf3 = trackpoint.Variable(6.0, name="leaf3")
    leaf.leaf4 = trackpoint.Variable(7.0, name="leaf4")
    return root


def second_root():
    """TF's root2 (leaf renamed leaf2) and the names the fixture uses for its objects."""
    root2 = SimpleModule()
    leaf2 = root2.leaf2 = SimpleModule()
    leaf2.leaf3 = trackpoint.Variable(6.0)
    leaf2.leaf4 = trackpoint.Variable(7.0)
    names = {id(root2): "root2", id(leaf2): "root2.leaf2", id(leaf2.leaf3): "leaf2.leaf3",
             id(leaf2.leaf4): "leaf2.leaf4"}
    for owner, prefix in ((root2, "root2"), (leaf2, "leaf2")):
        for attr in ("a_var", "b_var", "vars"):
            names[id(getattr(owner, attr))] = f"{prefix}.{attr}"
        for i in (0, 1):
            names[id(owner.vars[i])] = f"{prefix}.vars[{i}]"
    return root2, names


# ---- TensorFlow's unit tests ----------------------------------------------------------


def test_checkpoint_view_children(tmp_path):
    # TF's test saves Checkpoint(root=root) with root tracking "leaf"; a
    # Checkpoint with the leaf as a keyword has the same node 0 edges first.
    path = trackpoint.Checkpoint(leaf=Leafy()).save(tmp_path / "root_ckpt")
    name, node_id = next(iter(trackpoint.CheckpointView(path).children(0).items()))
    assert (name, node_id) == ("leaf", 1)


def test_checkpoint_view_all_nodes(tmp_path):
    path = trackpoint.Checkpoint(leaf=Leafy()).save(tmp_path / "root_ckpt")
    all_nodes = trackpoint.CheckpointView(path).descendants()
    assert len(all_nodes) == 3  # root, leaf, save_counter
    assert all_nodes[0] == 0 and all_nodes[1] == 1


def test_trackable_view_children():
    leaf = Leafy()
    root = Leafy(leaf)
    ((name, dependency),) = trackpoint.TrackableView(object).children(root).items()
    assert dependency is leaf and name == "leaf"


def test_trackable_view_descendants():
    leaf = Leafy()
    root = Leafy(leaf)
    descendants = trackpoint.TrackableView(root).descendants()
    assert len(descendants) == 2
    assert descendants[0] is root and descendants[1] is leaf


# ---- against what TensorFlow reported on its own checkpoint --------------------------


def tf_view():
    return trackpoint.CheckpointView(FIXTURE / RECORD["prefix"])


def test_children_and_descendants_of_tensorflows_checkpoint():
    view = tf_view()
    assert list(view.children(0).items()) == [tuple(x) for x in RECORD["children_0"]]
    assert list(view.children(4).items()) == [tuple(x) for x in RECORD["children_4"]]
    assert view.descendants() == RECORD["descendants"]


def test_match_and_diff_agree_with_tensorflow():
    root2, names = second_root()
    view = tf_view()
    got = [[n, names[id(o)]] for n, o in view.match(root2).items()]
    assert got == RECORD["match"]
    matched, only_ckpt, only_obj = view.diff(root2)
    assert [[n, names[id(o)]] for n, o in matched.items()] == RECORD["match"]
    assert only_ckpt == RECORD["diff_only_in_checkpoint"]
    assert [names[id(o)] for o in only_obj] == RECORD["diff_only_in_trackable"]


def test_trackable_view_agrees_with_tensorflow():
    root2, names = second_root()
    view = trackpoint.TrackableView(root2)
    assert [[k, names[id(v)]] for k, v in view.children(root2).items()] == \
        RECORD["trackable_children"]
    assert [names[id(o)] for o in view.descendants()] == RECORD["trackable_descendants"]


def test_our_save_of_the_same_structure_matches_like_tensorflows(tmp_path):
    # TF's fixture is Checkpoint(root).save(); the same objects as keywords
    # of a Checkpoint give the same graph below node 0's own edges.
    root = docstring_root()
    path = trackpoint.Checkpoint(a_var=root.a_var, b_var=root.b_var, leaf=root.leaf,
                                 vars=root.vars).save(tmp_path / "ckpt")
    view = trackpoint.CheckpointView(path)
    assert list(view.children(0)) == ["a_var", "b_var", "leaf", "vars", "save_counter"]
    assert view.descendants() == RECORD["descendants"]  # the "root" self-edge adds no node
    root2, names = second_root()
    matched = {names[id(o)] for n, o in view.match(root2).items() if n != 0}
    assert matched == {"root2.a_var", "root2.b_var", "root2.vars", "root2.vars[0]",
                       "root2.vars[1]"}


# ---- framework objects, errors ---------------------------------------------------------


def test_match_of_numpy_and_torch_objects(tmp_path):
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    weights = np.zeros(4, np.float32)
    path = trackpoint.Checkpoint(model=model, weights=weights).write(tmp_path / "c")
    view = trackpoint.CheckpointView(path)
    ckpt = trackpoint.Checkpoint(model=model, weights=weights)
    matched = view.match(ckpt)
    # root, model, weights, model/0, model/1 (ReLU), model/2, and 2 tensors each
    assert sorted(matched) == view.descendants() == list(range(10))
    model_id = view.children(0)["model"]
    assert matched[model_id]._wrapped() is model
    layer0 = view.children(model_id)["0"]
    assert list(view.children(layer0)) == ["weight", "bias"]
    assert matched[view.children(layer0)["weight"]]._wrapped() is model[0].weight
    assert matched[view.children(view.children(model_id)["2"])["bias"]]._wrapped() is model[2].bias
    assert matched[view.children(0)["weights"]]._wrapped() is weights


def test_inconsistent_reference_is_logged(tmp_path, caplog):
    shared = trackpoint.Variable(1.0)
    root = trackpoint.AutoTrackable()
    root.a = shared
    root.b = shared  # one node, two edges from node 0
    path = trackpoint.Checkpoint(model=root).write(tmp_path / "c")
    other = trackpoint.AutoTrackable()
    other.a = trackpoint.Variable(1.0)
    other.b = trackpoint.Variable(2.0)
    view = trackpoint.CheckpointView(path)
    model_id = view.children(0)["model"]
    assert view.children(model_id) == {"a": 2, "b": 2}
    with caplog.at_level(logging.WARNING, logger="trackpoint"):
        matched = view.match(trackpoint.Checkpoint(model=other))
    assert matched[2] is other.a  # the first path wins
    assert "inconsistent references" in caplog.text


def test_errors(tmp_path):
    with pytest.raises(trackpoint.NotFoundError):
        trackpoint.CheckpointView(tmp_path / "missing")
    tf1 = FIXTURE.parent / "ema" / "tf1" / "model.ckpt"
    with pytest.raises(ValueError, match="has no _CHECKPOINTABLE_OBJECT_GRAPH tensor"):
        trackpoint.CheckpointView(tf1)
    view = tf_view()
    with pytest.raises(IndexError, match="nodes 0..14, not 15"):
        view.children(15)
    with pytest.raises(ValueError, match="must be a trackable object"):
        view.match(object())
    with pytest.raises(ValueError, match="must be a trackable object"):
        trackpoint.TrackableView.children(3)


TF_VIEW = r"""
import json, sys
import tensorflow as tf
view = tf.train.CheckpointView(sys.argv[1])
print(json.dumps({"children": {n: list(view.children(n).items()) for n in view.descendants()},
                  "descendants": view.descendants()}))
"""


@needs_tf
def test_tensorflows_view_of_our_checkpoint_equals_ours(tmp_path):
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    opt.step()
    root = docstring_root()
    path = trackpoint.Checkpoint(root=root, model=model, optimizer=opt).save(tmp_path / "ckpt")
    script = tmp_path / "view.py"
    script.write_text(TF_VIEW)
    done = subprocess.run([TF_PYTHON, str(script), path], capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    view = trackpoint.CheckpointView(path)
    assert view.descendants() == report["descendants"]
    assert {str(n): [list(x) for x in view.children(n).items()] for n in view.descendants()} \
        == report["children"]
