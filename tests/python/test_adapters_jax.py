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


# ---- typed PRNG keys, optax and flax states, errors by key path ----------------------------


def attr(path, name):
    return f"{path}/.ATTRIBUTES/{name}"


def impl_name(key):
    return str(jax.random.key_impl(key))


def is_typed_key(value):
    return jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key)


def test_typed_keys_save_their_data_and_impl_and_come_back_typed(tmp_path):
    keys = {
        "one": jax.random.key(0),
        "split": jax.random.split(jax.random.key(1), 3),
        "rbg": jax.random.key(2, impl="rbg"),
    }
    path = trackpoint.Checkpoint(rng=PyTree(keys)).write(tmp_path / "c")
    reader = trackpoint.load_checkpoint(path)
    assert sorted(reader.get_variable_to_shape_map()) == sorted(
        [GRAPH] + [var(f"rng/{n}") for n in keys] + [attr(f"rng/{n}", "PRNG_IMPL") for n in keys]
    )
    assert reader.get_tensor(attr("rng/one", "PRNG_IMPL")) == b"threefry2x32"
    assert reader.get_tensor(attr("rng/rbg", "PRNG_IMPL")) == b"rbg"
    split = reader.get_tensor(var("rng/split"))
    assert split.dtype == np.uint32 and split.shape == (3, 2)
    np.testing.assert_array_equal(split, np.asarray(jax.random.key_data(keys["split"])))
    assert reader.get_tensor(var("rng/rbg")).shape == (4,)

    target = PyTree(
        {
            "one": jax.random.key(7),
            "split": jax.random.split(jax.random.key(8), 3),
            "rbg": jax.random.key(9, impl="rbg"),
        }
    )
    trackpoint.Checkpoint(rng=target).read(path).assert_consumed()
    for name, key in keys.items():
        got = target.tree[name]
        assert is_typed_key(got) and impl_name(got) == impl_name(key) and got.shape == key.shape
        np.testing.assert_array_equal(jax.random.key_data(got), jax.random.key_data(key))
    # The same random stream as the saved keys.
    for name in ("one", "rbg"):
        np.testing.assert_array_equal(
            jax.random.normal(target.tree[name], (5,)), jax.random.normal(keys[name], (5,))
        )


def test_old_style_uint32_keys_are_plain_arrays(tmp_path):
    key = jax.random.PRNGKey(3)
    path = trackpoint.Checkpoint(rng=PyTree({"k": key})).write(tmp_path / "c")
    reader = trackpoint.load_checkpoint(path)
    assert sorted(reader.get_variable_to_shape_map()) == [GRAPH, var("rng/k")]
    target = PyTree({"k": jax.random.PRNGKey(4)})
    trackpoint.Checkpoint(rng=target).read(path).assert_consumed()
    restored = target.tree["k"]
    assert restored.dtype == np.uint32 and not is_typed_key(restored)
    np.testing.assert_array_equal(jax.random.uniform(restored, (4,)), jax.random.uniform(key, (4,)))


def test_a_key_of_another_impl_is_refused_naming_the_leaf(tmp_path):
    path = trackpoint.Checkpoint(t=PyTree({"rng": {"noise": jax.random.key(0, impl="rbg")}})).write(
        tmp_path / "c"
    )
    other = PyTree({"rng": {"noise": jax.random.key(0, impl="unsafe_rbg")}})
    with pytest.raises(errors.InvalidArgumentError, match=r"'rng/noise'.*'rbg'.*'unsafe_rbg'"):
        trackpoint.Checkpoint(t=other).read(path)
    # A threefry key has other key data: refused before anything is read.
    threefry = PyTree({"rng": {"noise": jax.random.key(0)}})
    with pytest.raises(
        errors.InvalidArgumentError,
        match=r"'t/rng/noise/.ATTRIBUTES/VARIABLE_VALUE'.*uint32\[4\], object has uint32\[2\]",
    ):
        trackpoint.Checkpoint(t=threefry).read(path)


def test_leaves_come_back_uncommitted_or_weakly_typed_as_they_were(tmp_path):
    tree = {
        "w": jnp.ones(3, jnp.bfloat16),
        "k": jax.random.key(0),
        "scale": jnp.asarray(0.5),  # weakly typed: bfloat16 * scale stays bfloat16
        "strong": jnp.asarray(0.5, jnp.float32),
    }
    assert not tree["w"].committed and tree["scale"].weak_type
    path = trackpoint.Checkpoint(t=PyTree(tree)).write(tmp_path / "c")
    target = PyTree(
        {
            "w": jnp.zeros(3, jnp.bfloat16),
            "k": jax.random.key(1),
            "scale": jnp.asarray(2.0),
            "strong": jnp.asarray(2.0, jnp.float32),
        }
    )
    trackpoint.Checkpoint(t=target).read(path).assert_consumed()
    restored = target.tree
    assert not any(leaf.committed for leaf in restored.values())
    assert restored["scale"].weak_type and not restored["strong"].weak_type
    assert float(restored["scale"]) == 0.5
    traces = []

    @jax.jit
    def step(t):
        traces.append(1)
        return t["w"] * t["scale"] * jax.random.uniform(t["k"], (3,), jnp.bfloat16)

    assert step(restored).dtype == jnp.bfloat16
    np.testing.assert_array_equal(step(tree), step(restored))
    assert len(traces) == 1


def adam_state_after(tx, params, steps):
    state = tx.init(params)
    grads = jax.tree_util.tree_map(lambda p: jnp.full_like(p, 0.5), params)
    for _ in range(steps):
        _, state = tx.update(grads, state, params)
    return state


def host(leaf):
    if isinstance(leaf, jax.Array) and is_typed_key(leaf):
        return impl_name(leaf), np.asarray(jax.random.key_data(leaf))
    return None, np.asarray(leaf)


def assert_same_leaves(a, b):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        (x_impl, x), (y_impl, y) = host(x), host(y)
        assert x_impl == y_impl and x.dtype == y.dtype and x.tobytes() == y.tobytes()


def test_optax_chain_state_round_trips_with_its_structure(tmp_path):
    optax = pytest.importorskip("optax")
    params = {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.zeros(3)}
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2))
    state = adam_state_after(tx, params, steps=3)
    path = trackpoint.Checkpoint(opt_state=PyTree(state)).write(tmp_path / "c")
    # EmptyState (clip_by_global_norm's, adam's last) holds nothing to save.
    assert sorted(trackpoint.load_checkpoint(path).get_variable_to_shape_map()) == sorted(
        [GRAPH, var("opt_state/1/0/count")]
        + [var(f"opt_state/1/0/{m}/{p}") for m in ("mu", "nu") for p in ("b", "w")]
    )
    target = PyTree(tx.init(params))
    trackpoint.Checkpoint(opt_state=target).read(path).assert_consumed()
    restored = target.tree
    assert_same_leaves(restored, state)
    assert isinstance(restored[0], optax.EmptyState) and isinstance(
        restored[1][1], optax.EmptyState
    )
    assert type(restored[1][0]) is type(state[1][0]) and int(restored[1][0].count) == 3
    # Training goes on from the restored state exactly as from the original.
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    assert_same_leaves(tx.update(grads, restored, params), tx.update(grads, state, params))


def test_optax_inject_hyperparams_state_keeps_a_changed_learning_rate(tmp_path):
    optax = pytest.importorskip("optax")
    params = {"w": jnp.ones((2, 2))}
    tx = optax.inject_hyperparams(optax.adam)(learning_rate=0.1)
    state = adam_state_after(tx, params, steps=2)
    state.hyperparams["learning_rate"] = jnp.asarray(0.025, jnp.float32)
    path = trackpoint.Checkpoint(opt_state=PyTree(state)).write(tmp_path / "c")
    reader = trackpoint.load_checkpoint(path)
    assert reader.get_tensor(var("opt_state/hyperparams/learning_rate")) == np.float32(0.025)
    assert reader.get_tensor(var("opt_state/inner_state/0/count")) == 2
    target = PyTree(tx.init(params))
    trackpoint.Checkpoint(opt_state=target).read(path).assert_consumed()
    assert_same_leaves(target.tree, state)
    assert target.tree.hyperparams["learning_rate"] == np.float32(0.025)


def test_flax_nnx_state_round_trips_through_nnx_update(tmp_path):
    pytest.importorskip("flax", minversion="0.12")  # nnx modules that hold their rngs
    from flax import nnx

    class Model(nnx.Module):
        def __init__(self, rngs):
            self.linear = nnx.Linear(3, 4, rngs=rngs)
            self.dropout = nnx.Dropout(0.5, rngs=rngs)

        def __call__(self, x):
            return self.dropout(self.linear(x))

    x = jnp.ones((2, 3))
    model = Model(nnx.Rngs(0))
    model(x)  # moves the dropout's key stream on
    path = trackpoint.Checkpoint(model=PyTree(nnx.state(model))).write(tmp_path / "c")
    names = trackpoint.load_checkpoint(path).get_variable_to_shape_map()
    assert var("model/linear/kernel/value") in names
    assert attr("model/dropout/rngs/key/value", "PRNG_IMPL") in names

    fresh = Model(nnx.Rngs(1))
    state = PyTree(nnx.state(fresh))
    trackpoint.Checkpoint(model=state).read(path).assert_consumed()
    assert type(state.tree) is type(nnx.state(model))
    nnx.update(fresh, state.tree)
    assert_same_leaves(nnx.state(fresh), nnx.state(model))
    # Same weights and the same dropout masks from here on.
    np.testing.assert_array_equal(fresh(x), model(x))
    np.testing.assert_array_equal(fresh(x), model(x))


def test_flax_struct_dataclass_keeps_its_static_fields(tmp_path):
    struct = pytest.importorskip("flax.struct")

    @struct.dataclass
    class TrainState:
        step: jax.Array
        params: dict
        name: str = struct.field(pytree_node=False, default="mlp")

    saved = TrainState(step=jnp.asarray(5), params={"w": jnp.arange(3.0)}, name="saved")
    path = trackpoint.Checkpoint(state=PyTree(saved)).write(tmp_path / "c")
    assert sorted(trackpoint.load_checkpoint(path).get_variable_to_shape_map()) == [
        GRAPH,
        var("state/params/w"),
        var("state/step"),
    ]
    target = PyTree(TrainState(step=jnp.asarray(0), params={"w": jnp.zeros(3)}, name="target"))
    trackpoint.Checkpoint(state=target).read(path).assert_consumed()
    restored = target.tree
    assert isinstance(restored, TrainState) and restored.name == "target"  # static: not saved
    assert int(restored.step) == 5 and restored.params["w"].tolist() == [0, 1, 2]


def test_errors_name_the_key_path_not_a_repr(tmp_path):
    with pytest.raises(errors.InvalidArgumentError, match="pytree leaf 'grads/w': cannot be"):
        trackpoint.Checkpoint(g=PyTree({"grads": {"w": np.zeros(2, jax.dtypes.float0)}})).write(
            tmp_path / "a"
        )

    class Pair:  # a node whose keys are 1 and "1"
        def __init__(self, a, b):
            self.a, self.b = a, b

    jax.tree_util.register_pytree_with_keys(
        Pair,
        lambda p: (((jax.tree_util.DictKey(1), p.a), (jax.tree_util.DictKey("1"), p.b)), None),
        lambda _, children: Pair(*children),
    )
    with pytest.raises(errors.InvalidArgumentError, match="pytree node 'layers/0'.*collide"):
        PyTree({"layers": [Pair(jnp.ones(1), jnp.ones(1))]})

    optax = pytest.importorskip("optax")
    params = {"w": jnp.ones(2)}
    adam = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))
    path = trackpoint.Checkpoint(opt_state=PyTree(adam.init(params))).write(tmp_path / "b")
    sgd = optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(1e-3, momentum=0.9))
    status = trackpoint.Checkpoint(opt_state=PyTree(sgd.init(params))).read(path)
    with pytest.raises(AssertionError) as raised:
        status.assert_existing_objects_matched()
    assert "1/0/trace/w" in str(raised.value) and "object at 0x" not in str(raised.value)
    status.expect_partial()
