"""No import cycle anywhere in kopt or tflite_export, and tflite_export imports nothing from kopt.

The graph is built from the source with ``ast``, so an import inside a function
counts as much as one at the top: a function-level import that only dodges a cycle
is still a cycle here. Three rules:

* no cycle among modules (``kopt.pipeline.driver -> kopt.pipeline.tune -> ...``);
* no cycle among packages (``kopt.pruning -> kopt.quantization -> kopt.pruning``),
  where a package is ``tflite_export`` or a subpackage of kopt (``kopt.pruning``)
  and a module of kopt's top level is a package of its own;
* ``tflite_export`` imports no kopt module, so it can be used alone.
"""

import ast
import pathlib

import kopt
import tflite_export

PACKAGES = ("kopt", "tflite_export")
_ROOTS = {name: pathlib.Path(module.__file__).resolve().parent for name, module in (("kopt", kopt), ("tflite_export", tflite_export))}  # fmt: skip


def _module_files():
    """``{module name: path}`` of every module of kopt and tflite_export."""
    found = {}
    for package, root in _ROOTS.items():
        for path in sorted(root.rglob("*.py")):
            parts = (package,) + path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imported(tree, module, modules, is_package):
    """The modules ``tree`` imports: ``from a import b`` counts ``a.b`` when it is a module."""
    package = module if is_package else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                names.add(candidate if candidate in modules else base)
    return {name for name in names if name in modules and name != module}


def import_graph():
    """``{module: set of kopt/tflite_export modules it imports}``."""
    modules = _module_files()
    return {
        module: _imported(ast.parse(path.read_text()), module, modules, path.name == "__init__.py")
        for module, path in modules.items()
    }


def package_of(module):
    """``tflite_export`` for its modules; ``kopt.<first part>`` for kopt's; ``kopt`` for kopt/__init__."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "kopt" and len(parts) > 1 else parts[0]


def package_graph(graph):
    """``{package: packages it imports}``, from the module graph."""
    packages = {}
    for module, targets in graph.items():
        source = package_of(module)
        packages.setdefault(source, set()).update(package_of(t) for t in targets if package_of(t) != source)
    return packages


def find_cycle(graph):
    """A list of nodes forming a cycle (first node repeated at the end), or ``None``."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return path[path.index(target) :] + [target]
            if target not in state:
                cycle = visit(target, path + [target])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [node])
            if cycle:
                return cycle
    return None


def test_finds_a_cycle_when_there_is_one():
    assert find_cycle({"a": {"b"}, "b": {"a"}, "c": set()}) == ["a", "b", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert package_graph({"kopt.pruning.x": {"kopt.quantization.y"}, "kopt.quantization.y": set()}) == {
        "kopt.pruning": {"kopt.quantization"},
        "kopt.quantization": set(),
    }


def test_the_graph_sees_function_level_and_from_package_imports():
    graph = import_graph()
    assert "kopt.pipeline.settings" in graph["kopt.pipeline.techniques"]
    assert "kopt.cli.optimize" in graph["kopt.cli.entry"]  # imported inside main()
    assert "tflite_export.export_hooks" in graph["kopt.pruning.strip"]


def test_no_import_cycle_among_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_no_import_cycle_among_packages():
    cycle = find_cycle(package_graph(import_graph()))
    assert cycle is None, " -> ".join(cycle)


def test_tflite_export_imports_nothing_from_kopt():
    graph = import_graph()
    found = sorted(
        (m, t) for m, targets in graph.items() if m.startswith("tflite_export") for t in targets if t.startswith("kopt")
    )
    assert found == [], found
