"""The house has no circles and its imports go down: pure statistics at the bottom, then the I/O rooms, the engine,
the formats and the faces (docs/architecture.md).  Every import counts, deferred ones included (they hide circles
from the interpreter, not from a reader)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "dask_stats"

# the layer of each module (by the first component under dask_stats/); a module may import its own layer or below
LAYERS = {
    "errors": 0, "options": 1, "stats": 1,
    "storage": 2, "video": 2, "hub": 2, "plan": 2,
    "engine": 3,
    "formats": 4,
    "check": 5, "convert": 6, "roundtrip": 7, "doctor": 7, "synthetic": 5, "cli": 8, "__main__": 9, "__init__": 9,
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules that ``name`` imports (outside ``if TYPE_CHECKING:`` blocks)."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for node in ast.walk(tree)
               if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[:len(base) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
            if target not in modules:
                continue
            for alias in node.names:
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target)
    return found - {name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else "__init__"]


def test_no_import_circles():
    graph = _graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                pytest.fail("import circle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_imports_go_down_the_layers():
    upward = [f"{a} -> {b}" for a, targets in _graph().items() for b in targets
              if b != "dask_stats" and _layer(b) > _layer(a)]
    assert upward == []


def test_worker_side_modules_do_not_import_the_client_runner():
    """Code that runs on the workers (time guards, the video and Parquet work) does not pull in the client side."""
    graph = _graph()
    for module in ("dask_stats.engine.guards", "dask_stats.engine.video_stats", "dask_stats.engine.numeric"):
        assert "dask_stats.engine.runner" not in graph[module]
        source = (PACKAGE / module.split(".", 1)[1].replace(".", "/")).with_suffix(".py").read_text()
        assert "import distributed" not in source and "from distributed" not in source


def test_the_graph_is_read_as_the_interpreter_would():
    """The walker itself: it sees deferred imports and relative levels (a circle test that sees nothing passes)."""
    graph = _graph()
    assert "dask_stats.formats.v30.writer" in graph["dask_stats.formats"]
    assert "dask_stats.engine.runner" in graph["dask_stats.check"]  # a deferred import inside a function
    assert "dask_stats.stats.moments" in graph["dask_stats.stats.records"]
