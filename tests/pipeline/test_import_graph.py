"""No import cycle among the pipeline and CLI modules, function-level imports included.

The graph is built from the source with ``ast``, so an import inside a function
counts as much as one at the top. Widen ``CHECKED`` to ``("kopt.",)`` once the
other packages are free of cycles too.
"""

import ast
import pathlib

import kopt

CHECKED = ("kopt.pipeline", "kopt.cli")
_ROOT = pathlib.Path(kopt.__file__).resolve().parent


def _module_files():
    """``{module name: path}`` of every module of the kopt package."""
    found = {}
    for path in sorted(_ROOT.rglob("*.py")):
        parts = ("kopt",) + path.relative_to(_ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imported(tree, module, modules, is_package):
    """The kopt modules ``tree`` imports: ``from a import b`` counts ``a.b`` when it is a module."""
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
    """``{module: set of kopt modules it imports}`` for every module of the kopt package."""
    modules = _module_files()
    return {
        module: _imported(ast.parse(path.read_text()), module, modules, path.name == "__init__.py")
        for module, path in modules.items()
    }


def find_cycle(graph, prefixes):
    """A list of modules forming a cycle among modules named with ``prefixes``, or ``None``."""
    graph = {
        module: {target for target in targets if target.startswith(prefixes)}
        for module, targets in graph.items()
        if module.startswith(prefixes)
    }
    state = {}

    def visit(module, path):
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = visit(target, path + [target])
                if cycle:
                    return cycle
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module, [module])
            if cycle:
                return cycle
    return None


def test_finds_a_cycle_when_there_is_one():
    graph = {"kopt.cli.a": {"kopt.cli.b"}, "kopt.cli.b": {"kopt.cli.a"}, "kopt.x": {"kopt.x"}}
    assert find_cycle(graph, CHECKED) == ["kopt.cli.a", "kopt.cli.b", "kopt.cli.a"]
    assert find_cycle({"kopt.cli.a": {"kopt.cli.b"}, "kopt.cli.b": set()}, CHECKED) is None


def test_the_graph_sees_function_level_and_from_package_imports():
    graph = import_graph()
    assert "kopt.pipeline.settings" in graph["kopt.pipeline.techniques"]
    assert "kopt.cli.optimize" in graph["kopt.cli.entry"]  # imported inside main()


def test_no_import_cycle_among_pipeline_and_cli_modules():
    cycle = find_cycle(import_graph(), CHECKED)
    assert cycle is None, " -> ".join(cycle)
