"""No import cycle inside `ntcore/`.

The graph: one node per module of `ntcore/` (a package is its
`__init__.py`); an edge `a -> b` for every `import` statement in `a` that
names `b`, found with `ast`:

* `import ntcore.x.y` and `from ntcore.x import y` name `ntcore.x.y` when that
  is a module, else `ntcore.x` (a name defined in the package). Relative
  imports are resolved the same way.
* Imports inside functions **count**: a function-local import that breaks a
  cycle at load time still makes two modules depend on each other, which is
  what the rule forbids.
* The one exception is a lazy public-API accessor: a module-level
  `__getattr__` (PEP 562, as in `ntcore/__init__.py` and `ntcore/stax.py`)
  that loads a submodule on first use. It is how the public surface stays
  quick to import; the modules it reaches never import it back for anything
  but that surface. Imports inside such a `__getattr__` are not edges, and
  `importlib.import_module(...)` calls are not import statements.

Any cycle fails.
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1] / "ntcore"

def _modules(root: pathlib.Path) -> dict[str, pathlib.Path]:
  mods = {}
  for path in root.rglob("*.py"):
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
      parts = parts[:-1]
    mods[".".join(parts)] = path
  return mods


def _imported(node, module: str, is_package: bool, mods) -> list[str]:
  """The modules of `mods` an import statement names."""
  if isinstance(node, ast.Import):
    return [a.name for a in node.names if a.name in mods]
  base = node.module or ""
  if node.level:
    package = module.split(".") if is_package else module.split(".")[:-1]
    package = package[:len(package) - node.level + 1]
    base = ".".join(package + ([node.module] if node.module else []))
  out = []
  for alias in node.names:
    name = f"{base}.{alias.name}"
    out.append(name if name in mods else base)
  return [m for m in out if m in mods]


def import_graph(root: pathlib.Path = ROOT) -> dict[str, set[str]]:
  """`{module: modules it imports}` for every module under `root`."""
  mods = _modules(root)
  graph = {}
  for module, path in mods.items():
    edges = set()

    def visit(node, in_lazy_getattr):
      if isinstance(node, (ast.Import, ast.ImportFrom)) and not in_lazy_getattr:
        edges.update(_imported(node, module, path.name == "__init__.py", mods))
      for child in ast.iter_child_nodes(node):
        visit(child, in_lazy_getattr or (
            isinstance(child, ast.FunctionDef) and child.name == "__getattr__"
            and node is tree))

    tree = ast.parse(path.read_text(), str(path))
    visit(tree, False)
    graph[module] = edges - {module}
  return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """One cycle (as a closed path) per back edge of a depth-first search."""
  found, state, stack = [], {}, []

  def dfs(u):
    state[u] = "open"
    stack.append(u)
    for v in sorted(graph[u]):
      if state.get(v) == "open":
        found.append(stack[stack.index(v):] + [v])
      elif v not in state:
        dfs(v)
    stack.pop()
    state[u] = "done"

  for module in sorted(graph):
    if module not in state:
      dfs(module)
  return found


def test_no_import_cycle_in_ntcore():
  found = cycles(import_graph())
  assert not found, "import cycles:\n" + "\n".join(
      " -> ".join(c) for c in found)


def test_the_engine_imports_no_layer_or_combinator_module():
  graph = import_graph()
  engine = [m for m in graph if m.startswith("ntcore._network")]
  assert engine
  for module in engine:
    assert not graph[module] & {"ntcore.layer", "ntcore.combinators",
                                "ntcore.stax"}, module


def _write(root: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
  for name, text in files.items():
    path = root / "ntcore" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
  return root / "ntcore"


def test_a_function_local_import_closes_a_cycle(tmp_path):
  root = _write(tmp_path, {
      "__init__.py": "",
      "a.py": "from ntcore import b\n",
      "b.py": "def f():\n  from ntcore import a\n  return a\n",
  })
  assert cycles(import_graph(root)) == [["ntcore.a", "ntcore.b", "ntcore.a"]]


def test_a_lazy_getattr_accessor_is_not_an_edge(tmp_path):
  root = _write(tmp_path, {
      "__init__.py": ("def __getattr__(name):\n"
                      "  from ntcore import a\n  return a\n"),
      "a.py": "import ntcore\n",
      "sub/__init__.py": "from ntcore.sub import c\n",
      "sub/c.py": "from ntcore.sub import d\n",
      "sub/d.py": "from . import c as _c\n",
  })
  graph = import_graph(root)
  assert graph["ntcore"] == set()
  assert graph["ntcore.sub.d"] == {"ntcore.sub.c"}
  assert cycles(graph) == [["ntcore.sub.c", "ntcore.sub.d", "ntcore.sub.c"]]
