"""JAX pytrees as trackables.

JAX arrays are immutable, so a restore cannot write into them: it builds new
arrays, and the tree holding them is taken back from :attr:`PyTree.tree`.

Example::

    import jax.numpy as jnp
    import trackpoint
    from trackpoint.adapters.jax import PyTree

    params = {"dense": {"kernel": jnp.ones((3, 2)), "bias": jnp.zeros(2)},
              "layers": [jnp.ones(4), jnp.ones(4)]}
    state = PyTree(params)
    ckpt = trackpoint.Checkpoint(params=state)
    path = ckpt.save("/tmp/run/ckpt")     # params/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE, ...

    state.tree = train(state.tree)        # keep the PyTree pointing at the live tree
    ckpt.restore(path).assert_consumed()
    params = state.tree                   # new arrays holding the restored values

Structure: each pytree node is a checkpoint object whose children are named
by the keys JAX gives them (``jax.tree_util`` key paths): dict keys, list and
tuple positions ``"0"``, ``"1"``, ..., namedtuple and dataclass field names.
So optax states (``opt_state/0/mu/w``: named tuples, ``EmptyState``, chains,
``inject_hyperparams``), ``flax.struct.dataclass`` pytrees and flax ``nnx``
states (``nnx.state(model)``, ``model/linear/kernel/value``; put the restored
tree back with ``nnx.update(model, state.tree)``) keep their structure.

Leaves that are arrays (JAX or numpy) or Python numbers are variables
(``VARIABLE_VALUE``); other leaves (``None``, strings, ...) are kept as they
are and not saved. A typed PRNG key (``jax.random.key(0)``) saves its key
data (``jax.random.key_data``, uint32) as ``VARIABLE_VALUE`` and its
implementation's name (``"threefry2x32"``, ...) as a string ``PRNG_IMPL``
next to it, and comes back as a typed key of that implementation; old-style
uint32 keys (``jax.random.PRNGKey``) are plain arrays. A restored JAX leaf is
placed like the leaf it replaces: with its sharding when that leaf is
committed to devices, else uncommitted on the default device, and weakly
typed if it was, so jitted functions reuse their compiled code. A numpy leaf becomes a new numpy array,
a Python number a Python number of the same type.

Arrays sharded over several processes (``jax.distributed``) save with
``CheckpointOptions(experimental_coordinator=JaxCoordinator())``: each
process writes its addressable shards as slices; a restore with the
coordinator (or ``trackpoint.distributed.restore``) reads only the slices of
the shards each process's devices hold (see ``trackpoint.distributed.jax``).

Errors name the leaf by its key path in the tree (``'0/mu/w'``).
"""

from __future__ import annotations

import numbers

import numpy as np

from ..dtypes import as_dtype
from ..errors import CheckpointError, InvalidArgumentError
from ..trackable.base import Trackable
from ..trackable.variable import VARIABLE_VALUE

__all__ = ["PRNG_IMPL", "PyTree"]

PRNG_IMPL = "PRNG_IMPL"  # tensor name of a typed key's implementation name


def _key_name(entry) -> str:
    """The child name of one jax.tree_util key entry."""
    for attr in ("key", "idx", "name"):  # DictKey/FlattenedIndexKey, SequenceKey, GetAttrKey
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def _path_text(path: tuple) -> str:
    return "/".join(path) if path else "<root>"


def _is_typed_key(value) -> bool:
    import jax

    return isinstance(value, jax.Array) and jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key)


def _place_like(array, old):
    """array as a JAX array like old: weakly typed if old is (a Python number
    made into an array: it keeps its type promotion), on old's devices, with
    its sharding when old is committed to them, else uncommitted on the
    default device. So jitted functions see the same kind of argument and
    reuse their compiled code."""
    import jax

    if getattr(old, "weak_type", False):
        try:
            from jax._src.lax.lax import _convert_element_type  # no public spelling
        except ImportError:
            pass
        else:
            array = _convert_element_type(array, old.dtype, weak_type=True)
    if getattr(old, "committed", True):
        if not old.sharding.is_fully_addressable:
            # Devices of other processes: every process builds its own shards.
            from ..distributed.jax import make_array

            def box(extents):
                return array[tuple(slice(s, s + n) for s, n in extents)]

            return make_array(box, array.shape, old.sharding)
        return jax.device_put(array, old.sharding)
    return jax.device_put(array)


def _build(value, path: tuple = ()):
    """The node for a pytree value at path (a tuple of names): a _Leaf,
    _KeyLeaf or _Node, or None (not saved)."""
    import jax

    if isinstance(value, (jax.Array, np.ndarray, np.generic, numbers.Number)):
        return _KeyLeaf(value, path) if _is_typed_key(value) else _Leaf(value, path)
    if value is None:
        return None
    flat, treedef = jax.tree_util.tree_flatten_with_path(value, is_leaf=lambda x: x is not value)
    if jax.tree_util.treedef_is_leaf(treedef):
        return None  # a leaf that holds no array: kept, not saved
    return _Node(treedef, [(_key_name(p[-1]), child) for p, child in flat], path)


class _Leaf(Trackable):
    """One leaf, saved as a variable; a restore replaces it with a new value."""

    def __init__(self, value, path: tuple = ()):
        self.value = value
        self._self_path = path

    def __repr__(self) -> str:
        try:
            dtype, shape = self._tensor_specs()[VARIABLE_VALUE]
            spec = f"{dtype.name}[{','.join(map(str, shape))}]"
        except CheckpointError:
            spec = type(self.value).__name__
        return f"<pytree leaf {_path_text(self._self_path)!r} {spec}>"

    def _fail(self, what: str) -> InvalidArgumentError:
        return InvalidArgumentError(f"pytree leaf {_path_text(self._self_path)!r}: {what}")

    def _array(self) -> np.ndarray:
        from ..distributed.jax import host_value

        return host_value(self.value)

    def _is_split(self) -> bool:
        """A JAX array sharded over several processes: each holds slices."""
        from ..distributed.jax import spans_processes

        return spans_processes(self.value) and not self.value.is_fully_replicated

    def _serialize_to_tensors(self) -> dict:
        if self._is_split():
            from ..distributed.jax import addressable_slices

            return {VARIABLE_VALUE: addressable_slices(self.value)}
        return {VARIABLE_VALUE: self._array()}

    def _restore_regions(self, reader, keys: dict) -> bool:
        """A multi-process restore (trackpoint.distributed.restore) of a leaf
        whose array is sharded: builds it in the same sharding, each process
        reading only its shards' regions. False for other leaves."""
        import jax

        old = self.value
        if not (
            isinstance(old, jax.Array)
            and getattr(old, "committed", True)
            and not (old.is_fully_addressable and old.is_fully_replicated)
        ):
            return False
        from ..distributed.jax import make_array
        from ..distributed.restoring import read_region

        key = keys[VARIABLE_VALUE]
        entry = reader.entry(key)
        dtype, shape = self._tensor_specs()[VARIABLE_VALUE]
        if entry.dtype != dtype or tuple(entry.shape) != tuple(shape):
            raise self._fail(
                f"cannot restore {key!r} from {reader.prefix}: the checkpoint has "
                f"{entry.dtype.name}{list(entry.shape)}, the tree "
                f"{dtype.name}{list(shape)}"
            )
        self.value = make_array(
            lambda extents: read_region(reader, key, extents, dtype), shape, old.sharding
        )
        return True

    def _tensor_names(self) -> list:
        return [VARIABLE_VALUE]

    def _tensor_specs(self) -> dict:
        v = self.value
        dtype, shape = (
            (v.dtype, tuple(v.shape)) if hasattr(v, "shape") else (np.asarray(v).dtype, ())
        )
        try:
            return {VARIABLE_VALUE: (as_dtype(dtype), shape)}
        except InvalidArgumentError as e:
            raise self._fail(f"cannot be checkpointed: {e}") from None

    def _restore_from_tensors(self, tensors: dict) -> None:
        import jax

        array = tensors[VARIABLE_VALUE]
        old = self.value
        if isinstance(old, jax.Array):
            self.value = _place_like(array, old)
        elif isinstance(old, (np.ndarray, np.generic)):
            self.value = array if isinstance(old, np.ndarray) else array[()]
        else:
            self.value = type(old)(array.item())

    def assemble(self):
        return self.value


class _KeyLeaf(_Leaf):
    """A typed PRNG key array: its key data as the variable, its
    implementation's name as a string beside it."""

    def _impl(self) -> str:
        import jax

        return str(jax.random.key_impl(self.value))

    def _array(self) -> np.ndarray:
        import jax

        from ..distributed.jax import host_value

        return host_value(jax.random.key_data(self.value))

    def _is_split(self) -> bool:
        return False  # saved whole, with its implementation's name

    def _restore_regions(self, reader, keys: dict) -> bool:
        return False

    def _serialize_to_tensors(self) -> dict:
        return {
            VARIABLE_VALUE: self._array(),
            PRNG_IMPL: np.array(self._impl().encode("utf-8"), dtype=object),
        }

    def _tensor_names(self) -> list:
        return [VARIABLE_VALUE, PRNG_IMPL]

    def _tensor_specs(self) -> dict:
        import jax

        shape = jax.random.key_data(self.value).shape
        return {VARIABLE_VALUE: (as_dtype(np.uint32), tuple(shape))}

    def _restore_from_tensors(self, tensors: dict) -> None:
        import jax

        impl = tensors[PRNG_IMPL]
        impl = impl.reshape(-1)[0] if isinstance(impl, np.ndarray) else impl
        impl = impl.decode("utf-8") if isinstance(impl, bytes) else str(impl)
        if impl != self._impl():
            raise self._fail(
                f"the checkpoint holds a {impl!r} PRNG key, the tree a {self._impl()!r} key"
            )
        key = jax.random.wrap_key_data(tensors[VARIABLE_VALUE], impl=impl)
        self.value = _place_like(key, self.value)


class _Node(Trackable):
    """An inner pytree node; its children are named by their JAX keys."""

    def __init__(self, treedef, entries, path: tuple = ()):
        self._self_treedef = treedef
        self._self_path = path
        names = [name for name, _ in entries]
        if len(set(names)) != len(names):
            raise InvalidArgumentError(
                f"cannot save pytree node {_path_text(path)!r}: its keys collide as "
                f"strings: {names}"
            )
        # (name, node or None, original value)
        self._self_entries = [
            (name, _build(child, (*path, name)), child) for name, child in entries
        ]

    def __repr__(self) -> str:
        return f"<pytree node {_path_text(self._self_path)!r}>"

    def _trackable_children(self) -> dict:
        return {name: node for name, node, _ in self._self_entries if node is not None}

    def assemble(self):
        return self._self_treedef.unflatten(
            [
                node.assemble() if node is not None else value
                for _, node, value in self._self_entries
            ]
        )


class PyTree(Trackable):
    """A pytree of arrays (dicts, lists, tuples, any registered JAX node) as a
    checkpoint object; see the module docstring.

    ``tree`` is the current tree: assign the new tree after each update
    (JAX returns new arrays), and read it back after a restore.
    """

    def __init__(self, tree):
        self.tree = tree

    @property
    def tree(self):
        """The tree, with the restored arrays after a restore."""
        node = self._self_node
        return node.assemble() if node is not None else self._self_static

    @tree.setter
    def tree(self, value) -> None:
        object.__setattr__(self, "_self_node", _build(value))
        object.__setattr__(self, "_self_static", value)

    def __repr__(self) -> str:
        return f"PyTree({self.tree!r})"

    # A tree that is a single leaf is itself a variable.
    def _trackable_children(self) -> dict:
        node = self._self_node
        return node._trackable_children() if node is not None else {}

    def _serialize_to_tensors(self) -> dict:
        node = self._self_node
        return node._serialize_to_tensors() if node is not None else {}

    def _tensor_names(self) -> list:
        node = self._self_node
        return node._tensor_names() if node is not None else []

    def _tensor_specs(self) -> dict:
        node = self._self_node
        return node._tensor_specs() if node is not None else {}

    def _restore_from_tensors(self, tensors: dict) -> None:
        self._self_node._restore_from_tensors(tensors)

    def _restore_regions(self, reader, keys: dict) -> bool:
        node = self._self_node
        restore_regions = getattr(node, "_restore_regions", None)
        return restore_regions is not None and restore_regions(reader, keys)
