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
Leaves that are arrays (JAX or numpy) or Python numbers are variables
(``VARIABLE_VALUE``); other leaves (``None``, strings, ...) are kept as they
are and not saved. A restored JAX leaf is placed with the sharding of the
leaf it replaces; a numpy leaf becomes a new numpy array, a Python number a
Python number of the same type.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..dtypes import as_dtype
from ..trackable.base import Trackable
from ..trackable.variable import VARIABLE_VALUE

__all__ = ["PyTree"]


def _key_name(entry) -> str:
    """The child name of one jax.tree_util key entry."""
    for attr in ("key", "idx", "name"):  # DictKey/FlattenedIndexKey, SequenceKey, GetAttrKey
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def _build(value):
    """The node for a pytree value: a _Leaf, a _Node, or None (not saved)."""
    import jax

    if isinstance(value, (jax.Array, np.ndarray, np.generic, numbers.Number)):
        return _Leaf(value)
    if value is None:
        return None
    flat, treedef = jax.tree_util.tree_flatten_with_path(value, is_leaf=lambda x: x is not value)
    if jax.tree_util.treedef_is_leaf(treedef):
        return None  # a leaf that holds no array: kept, not saved
    return _Node(treedef, [(_key_name(path[-1]), child) for path, child in flat])


class _Leaf(Trackable):
    """One leaf, saved as a variable; a restore replaces it with a new value."""

    def __init__(self, value):
        self.value = value

    def _array(self) -> np.ndarray:
        return np.asarray(self.value)

    def _serialize_to_tensors(self) -> dict:
        return {VARIABLE_VALUE: self._array()}

    def _tensor_names(self) -> list:
        return [VARIABLE_VALUE]

    def _tensor_specs(self) -> dict:
        v = self.value
        if hasattr(v, "dtype") and hasattr(v, "shape"):
            return {VARIABLE_VALUE: (as_dtype(v.dtype), tuple(v.shape))}
        return {VARIABLE_VALUE: (as_dtype(np.asarray(v).dtype), ())}

    def _restore_from_tensors(self, tensors: dict) -> None:
        import jax

        array = tensors[VARIABLE_VALUE]
        old = self.value
        if isinstance(old, jax.Array):
            self.value = jax.device_put(array, old.sharding)
        elif isinstance(old, (np.ndarray, np.generic)):
            self.value = array if isinstance(old, np.ndarray) else array[()]
        else:
            self.value = type(old)(array.item())

    def assemble(self):
        return self.value


class _Node(Trackable):
    """An inner pytree node; its children are named by their JAX keys."""

    def __init__(self, treedef, entries):
        self._self_treedef = treedef
        names = [name for name, _ in entries]
        if len(set(names)) != len(names):
            raise ValueError(f"cannot save a pytree node whose keys collide as strings: {names}")
        # (name, node or None, original value)
        self._self_entries = [(name, _build(child), child) for name, child in entries]

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
