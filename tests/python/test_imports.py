"""Structure checks on the trackpoint package, from its source text alone.

Every module of python/trackpoint is parsed with ``ast``; imports at module
level and inside functions, relative and absolute, are collected. The tests
fail on:

* an import cycle between trackpoint modules (naming the cycle), and
* one trackpoint module using another trackpoint module's underscore name,
  either imported (``from .x import _name``) or read as an attribute of an
  imported module (``x._name``).

Underscore *modules* (``_core``, ``_saver``...) are package-internal modules
and may be imported; only underscore *names defined in* another module count.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE_ROOT = pathlib.Path(__file__).resolve().parents[2] / "python" / "trackpoint"
PACKAGE = "trackpoint"

# Underscore names that are package-internal protocol, used across modules on
# purpose. Each entry: (importing module, defining module, name), with why.
# Empty: helpers shared between modules are public names of the lower module.
# (Methods such as Trackable's ``_serialize_to_tensors`` or Checkpoint's
# ``_graph_root`` are attribute calls on objects, not module names, and are
# not checked here.)
ALLOWED_PRIVATE = frozenset()


def _module_name(path):
    rel = path.relative_to(PACKAGE_ROOT.parent)
    rel = rel.with_suffix("") if rel.suffix == ".py" else rel
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules():
    """Map module name -> (path, is_package) for every .py file of the package."""
    found = {}
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        found[_module_name(path)] = (path, path.name == "__init__.py")
    # Compiled extension modules are modules too; they have no source to scan.
    # The C++ ``_core`` is one even where no built .so sits in this tree (a
    # fresh checkout, tested against the installed package).
    found.setdefault("trackpoint._core", (None, False))
    for path in sorted(PACKAGE_ROOT.rglob("*.so")):
        name = _module_name(path.with_name(path.name.split(".")[0]))
        found.setdefault(name, (None, False))
    return found


MODULES = _modules()


def _resolve_from(module, is_package, node):
    """Absolute name of the module a ``from ... import`` statement reads."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    if node.module:
        base = base + node.module.split(".")
    return ".".join(base)


def _known(name):
    """The trackpoint module ``name`` refers to, or None."""
    return name if name in MODULES else None


class _Imports(ast.NodeVisitor):
    """Collects the intra-package imports and private-name uses of one module."""

    def __init__(self, module, is_package):
        self.module = module
        self.is_package = is_package
        self.edges = {}  # target module -> first line
        self.private = []  # (line, target module, name)
        self.aliases = {}  # local name -> trackpoint module

    def _edge(self, target, line):
        if target and target != self.module:
            self.edges.setdefault(target, line)

    def visit_Import(self, node):
        for alias in node.names:
            if not alias.name.startswith(PACKAGE):
                continue
            target = _known(alias.name)
            self._edge(target, node.lineno)
            if alias.asname and target:
                self.aliases[alias.asname] = target

    def visit_ImportFrom(self, node):
        source = _resolve_from(self.module, self.is_package, node)
        if not source.startswith(PACKAGE):
            return
        for alias in node.names:
            submodule = _known(f"{source}.{alias.name}")
            if submodule:
                # ``from . import x``: x is a module.
                self._edge(submodule, node.lineno)
                self.aliases[alias.asname or alias.name] = submodule
                continue
            target = _known(source)
            self._edge(target, node.lineno)
            if target and alias.name.startswith("_") and not alias.name.startswith("__"):
                self.private.append((node.lineno, target, alias.name))

    def visit_Attribute(self, node):
        if isinstance(node.value, ast.Name) and node.value.id in self.aliases:
            name = node.attr
            target = self.aliases[node.value.id]
            if name.startswith("_") and not name.startswith("__"):
                if not _known(f"{target}.{name}"):
                    self.private.append((node.lineno, target, name))
        self.generic_visit(node)


def _scan():
    scans = {}
    for module, (path, is_package) in MODULES.items():
        if path is None:
            continue
        visitor = _Imports(module, is_package)
        visitor.visit(ast.parse(path.read_text(), filename=str(path)))
        scans[module] = visitor
    return scans


def _graph(scans):
    """module -> {imported module: line}. A package's __init__ importing its
    own submodules is an edge like any other."""
    return {module: dict(scan.edges) for module, scan in scans.items()}


def find_cycle(graph):
    """One cycle of ``graph`` as a list of nodes (first repeated last), or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = {node: WHITE for node in graph}
    stack = []

    def visit(node):
        colour[node] = GREY
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in colour:
                continue
            if colour[nxt] == GREY:
                return stack[stack.index(nxt):] + [nxt]
            if colour[nxt] == WHITE:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        colour[node] = BLACK
        return None

    for node in sorted(graph):
        if colour[node] == WHITE:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def _describe(cycle, graph):
    steps = []
    for a, b in zip(cycle, cycle[1:]):
        steps.append(f"{a} (line {graph[a][b]}) -> {b}")
    return "; ".join(steps)


def all_cycles(graph):
    """Repeatedly find a cycle and cut its first edge, to list them all."""
    graph = {k: dict(v) for k, v in graph.items()}
    cycles = []
    while True:
        cycle = find_cycle(graph)
        if not cycle:
            return cycles
        cycles.append(_describe(cycle, graph))
        del graph[cycle[0]][cycle[1]]


def test_scanner_sees_the_package():
    assert "trackpoint.checkpoint" in MODULES
    assert "trackpoint.distributed.saving" in MODULES
    scans = _scan()
    # A known import, to show the scanner reads relative imports.
    assert "trackpoint.state_file" in scans["trackpoint.manager"].edges
    # ``from . import _core`` names the compiled module, not a private name.
    assert "trackpoint._core" in scans["trackpoint._saver"].edges
    assert scans["trackpoint._saver"].private == []


def test_find_cycle_detects_a_cycle():
    graph = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": 1}, "b": {}}) is None


def test_function_level_imports_are_edges():
    visitor = _Imports("trackpoint.checkpoint", False)
    visitor.visit(ast.parse("def f():\n    from .distributed.saving import write\n"))
    assert visitor.edges == {"trackpoint.distributed.saving": 2}
    assert visitor.private == []
    visitor = _Imports("trackpoint.distributed.restoring", False)
    visitor.visit(ast.parse("def f():\n    from ..manager import _x\n    import trackpoint.checkpoint as c\n    c._y\n"))
    assert visitor.edges == {"trackpoint.manager": 2, "trackpoint.checkpoint": 3}
    assert visitor.private == [(2, "trackpoint.manager", "_x"), (4, "trackpoint.checkpoint", "_y")]


def test_no_import_cycles():
    cycles = all_cycles(_graph(_scan()))
    assert not cycles, "import cycles inside trackpoint:\n" + "\n".join(cycles)


def test_no_private_names_across_modules():
    uses = []
    for module, scan in _scan().items():
        for line, target, name in scan.private:
            if (module, target, name) in ALLOWED_PRIVATE:
                continue
            uses.append(f"{module} line {line}: {target}.{name}")
    assert not uses, "private names used across modules:\n" + "\n".join(uses)


# ---- the adapter registry: adapters register, the core imports none ------------------------
def test_core_modules_import_no_adapter():
    """trackpoint.trackable (the core's data structures) asks the registry;
    adapters register into it, never the other way round."""
    scans = _scan()
    upward = [f"{module} line {line}: imports {target}"
              for module, scan in scans.items() if module.startswith("trackpoint.trackable")
              for target, line in scan.edges.items() if target.startswith("trackpoint.adapters")]
    assert not upward, "\n".join(upward)
    assert "trackpoint.trackable.registry" in scans["trackpoint.trackable.data_structures"].edges
    assert "trackpoint.trackable.registry" in scans["trackpoint.adapters.torch"].edges


def _run(code, tmp_path):
    import os
    import subprocess
    import sys

    import trackpoint

    # The trackpoint under test (installed, or the source tree with a built
    # _core), not the bare source folder, which may hold no compiled module.
    installed = pathlib.Path(trackpoint.__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path), str(installed), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_lazy_registration_resolves_once_the_framework_is_imported(tmp_path):
    # A stand-in framework and its adapter module, in a fresh interpreter.
    (tmp_path / "fakeframework.py").write_text("class Thing:\n    pass\n")
    (tmp_path / "fake_adapter.py").write_text(
        "import sys\n"
        "from trackpoint.adapters import register\n"
        "import trackpoint\n"
        "LOADED = True\n"
        "register(lambda v: isinstance(v, sys.modules['fakeframework'].Thing),\n"
        "         lambda v: trackpoint.Variable(7))\n")
    out = _run(
        "import sys, trackpoint\n"
        "from trackpoint.adapters import adapt, register_lazy\n"
        "register_lazy('fakeframework', 'fake_adapter')\n"
        "print(adapt('x') == 'x', 'fake_adapter' in sys.modules)\n"
        "import fakeframework\n"
        "print('fake_adapter' in sys.modules)\n"
        "v = adapt(fakeframework.Thing())\n"
        "print('fake_adapter' in sys.modules, type(v).__name__, int(v.numpy()))\n"
        "print('torch' in sys.modules, 'jax' in sys.modules)\n", tmp_path)
    assert out == ["True", "False", "False", "True", "Variable", "7", "False", "False"]


def test_registered_adapter_is_tried_before_the_stateful_fallback(tmp_path):
    out = _run(
        "import numpy as np, trackpoint\n"
        "from trackpoint.adapters import adapt, register\n"
        "from trackpoint.adapters.numpy import NumpyArray\n"
        "from trackpoint.adapters.stateful import Stateful\n"
        "class Box:\n"
        "    def state_dict(self): return {}\n"
        "    def load_state_dict(self, d): pass\n"
        "print(type(adapt(Box())).__name__)\n"
        "class Special(Box):\n"
        "    pass\n"
        "register(lambda v: isinstance(v, Special), lambda v: NumpyArray(np.zeros(2)))\n"
        "print(type(adapt(Special())).__name__, type(adapt(Box())).__name__)\n"
        "a = np.ones(3)\n"
        "print(adapt(a) is adapt(a), type(adapt(a)).__name__)\n", tmp_path)
    assert out == ["Stateful", "NumpyArray", "Stateful", "True", "NumpyArray"]


def test_shipped_core_module_has_no_test_hooks():
    """Test and benchmark hooks live in trackpoint._core_testing, not in _core."""
    from trackpoint import _core

    hooks = {"set_io_fault", "raise_status", "serialize_bundle_entry", "serialize_bundle_header",
             "slice_key", "write_table", "make_backend", "make_fake_backend", "make_pool",
             "stage_to_bytes", "stage_from_bytes", "d2h_bandwidth", "plain_pinned_copy_bandwidth",
             "StagingBackend", "StagingPool"}
    names = {n.lstrip("_") for n in dir(_core)}
    assert not hooks & names
    testing = pytest.importorskip("trackpoint._core_testing")
    assert hooks <= set(dir(testing))
