"""adapters/jax.py: pytrees saved as variables by key path, restored as new arrays."""

import collections

import numpy as np
import pytest

import trackpoint
from trackpoint import errors
from trackpoint.adapters.jax import PyTree  # imports jax only when used

jax = pytest.importorskip("jax")
jnp = jax.numpy

GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"
Adam = collections.namedtuple("Adam", ["count", "mu"])


def var(path):
    return f"{path}/.ATTRIBUTES/VARIABLE_VALUE"


def make_tree(seed):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    return {
        "dense": {"kernel": jax.random.normal(k1, (3, 2)), "bias": jnp.zeros(2)},
        "layers": [jax.random.normal(k2, (4,)), (jax.random.normal(k3, (2, 2)), None)],
        "opt": Adam(count=jnp.asarray(7, jnp.int32), mu=jnp.ones(3, jnp.bfloat16)),
        "host": np.arange(3, dtype=np.int64),
        "scale": 0.5,
        "name": "not saved",
    }


def test_nested_pytree_round_trip(tmp_path):
    source = make_tree(seed=0)
    path = trackpoint.Checkpoint(params=PyTree(source)).save(tmp_path / "ckpt")
    assert sorted(trackpoint.load_checkpoint(path).get_variable_to_shape_map()) == sorted(
        [
            GRAPH,
            var("save_counter"),
            var("params/dense/kernel"),
            var("params/dense/bias"),
            var("params/layers/0"),
            var("params/layers/1/0"),
            var("params/opt/count"),
            var("params/opt/mu"),
            var("params/host"),
            var("params/scale"),
        ]
    )

    target = PyTree(make_tree(seed=1))
    before = target.tree
    trackpoint.Checkpoint(params=target).restore(path).assert_consumed()
    restored = target.tree
    for a, b in zip(jax.tree_util.tree_leaves(source), jax.tree_util.tree_leaves(restored)):
        assert type(a) is type(b) or isinstance(b, jax.Array)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert np.asarray(a).dtype == np.asarray(b).dtype
    # New arrays: the tree held before the restore is unchanged.
    assert not np.array_equal(before["dense"]["kernel"], restored["dense"]["kernel"])
    assert isinstance(restored["dense"]["kernel"], jax.Array)
    assert isinstance(restored["opt"], Adam) and isinstance(restored["layers"][1], tuple)
    assert restored["layers"][1][1] is None and restored["name"] == "not saved"
    assert type(restored["scale"]) is float and isinstance(restored["host"], np.ndarray)


def test_restored_arrays_keep_the_sharding_of_the_leaves_they_replace(tmp_path):
    device = jax.devices()[-1]
    tree = {"w": jax.device_put(jnp.ones((2, 3)), device)}
    path = trackpoint.Checkpoint(t=PyTree(tree)).write(tmp_path / "c")
    target = PyTree({"w": jax.device_put(jnp.zeros((2, 3)), device)})
    trackpoint.Checkpoint(t=target).read(path).assert_consumed()
    assert target.tree["w"].sharding == tree["w"].sharding
    np.testing.assert_array_equal(target.tree["w"], np.ones((2, 3)))


def test_a_single_array_tree_is_a_variable(tmp_path):
    path = trackpoint.Checkpoint(w=PyTree(jnp.arange(4.0))).write(tmp_path / "c")
    assert trackpoint.load_checkpoint(path).get_tensor(var("w")).tolist() == [0, 1, 2, 3]
    target = PyTree(jnp.zeros(4))
    trackpoint.Checkpoint(w=target).read(path).assert_consumed()
    assert target.tree.tolist() == [0, 1, 2, 3]


def test_assigning_a_new_tree_is_what_gets_saved(tmp_path):
    state = PyTree({"w": jnp.zeros(2)})
    ckpt = trackpoint.Checkpoint(state=state)
    state.tree = jax.tree_util.tree_map(lambda x: x + 1, state.tree)
    path = ckpt.write(tmp_path / "c")
    assert trackpoint.load_checkpoint(path).get_tensor(var("state/w")).tolist() == [1, 1]


def test_missing_leaf_fails_assert_consumed(tmp_path):
    path = trackpoint.Checkpoint(p=PyTree(make_tree(seed=0))).write(tmp_path / "c")
    partial = make_tree(seed=0)
    del partial["dense"]
    status = trackpoint.Checkpoint(p=PyTree(partial)).read(path)
    status.assert_existing_objects_matched()
    with pytest.raises(AssertionError):
        status.assert_consumed()
    status.expect_partial()


def test_shape_mismatch_names_the_key(tmp_path):
    path = trackpoint.Checkpoint(p=PyTree({"w": jnp.zeros((2, 3))})).write(tmp_path / "c")
    with pytest.raises(errors.InvalidArgumentError, match="'p/w/.ATTRIBUTES/VARIABLE_VALUE'"):
        trackpoint.Checkpoint(p=PyTree({"w": jnp.zeros((3, 2))})).read(path)
