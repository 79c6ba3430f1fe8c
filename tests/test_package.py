"""Package surface: pinned __all__, no heavy imports, CLI entry point."""

from __future__ import annotations

import json
import subprocess
import sys

import datacarto

HEAVY = {"torch", "transformers", "lightning", "keras", "tensorflow", "xgboost", "lightgbm",
         "matplotlib", "plotly", "sklearn", "dask", "sentence_transformers", "scipy"}


def test_all_is_sorted_and_complete() -> None:
    assert datacarto.__all__ == sorted(datacarto.__all__)
    public = {n for n in vars(datacarto) if not n.startswith("_")} - {"annotations"}
    modules = {n for n in public if type(getattr(datacarto, n)).__name__ == "module"}
    assert set(datacarto.__all__) - {"__version__", "plot_data_map"} == public - modules
    for name in datacarto.__all__:
        assert getattr(datacarto, name) is not None


def test_import_pulls_in_no_framework_or_plotting() -> None:
    code = ("import sys, json, datacarto, datacarto.cli, datacarto.integrations; "
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {m.split(".")[0] for m in json.loads(out.stdout)}
    assert not (HEAVY & loaded), HEAVY & loaded


def test_cli_help_lists_contract_commands() -> None:
    from datacarto.cli import build_parser

    text = build_parser().format_help()
    for command in ("run", "metrics", "map", "report", "flag", "select", "review", "import",
                    "export", "demo"):
        assert command in text


def test_python_m_datacarto_version() -> None:
    out = subprocess.run([sys.executable, "-m", "datacarto", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == f"datacarto {datacarto.__version__}"


def _import_graph() -> dict[str, set[str]]:
    """datacarto module -> the datacarto modules its ``import`` statements name, wherever they
    are (also inside functions), except under ``if TYPE_CHECKING:`` (never executed) and
    except the module's own parent packages (already being imported)."""
    import ast
    from pathlib import Path

    root = Path(datacarto.__file__).parent

    def name_of(path: Path) -> str:
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    modules = {name_of(p): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[:len(package.split(".")) - node.level + 1] \
                    if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                named = [f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target
                         for a in node.names]
            elif isinstance(node, ast.Import):
                named = [a.name for a in node.names]
            else:
                continue
            deps |= {m for m in named if m in modules and m != name
                     and not name.startswith(m + ".")}
        graph[name] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    """No module imports (even lazily, inside a function) one that imports it back."""
    graph = _import_graph()
    assert "datacarto.store" in graph["datacarto.engine"]  # the walk sees relative imports
    assert _cycles(graph) == []
