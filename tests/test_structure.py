"""The shape of the package: strategies are plug-ins (nothing outside hf_tl/strategies/ branches on a strategy's
name), no import cycle, and the optimizer loop knows nothing of run kinds."""

import ast
import re
import sys
from pathlib import Path

import pytest
from conftest import REPO

from hf_tl.strategies import STRATEGIES

PACKAGE = REPO / "hf_tl"
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "modules" not in p.relative_to(PACKAGE).parts)


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def strategy_names_in(tree: ast.AST) -> list[tuple[int, str]]:
    """Where code tests, selects, builds or quotes a strategy by its name: comparisons with a name, dict keys and
    subscripts that are names, ``strategy="name"`` arguments, and messages that quote a name (docstrings, which
    document, are left out)."""
    names = set(STRATEGIES)
    quoted = re.compile("['\"]({})['\"]".format("|".join(map(re.escape, names))))
    documented = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree) if isinstance(node, documented) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    found = []

    def literal_names(node) -> list[str]:
        if isinstance(node, ast.Constant) and node.value in names:
            return [node.value]
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return [n for element in node.elts for n in literal_names(element)]
        return []

    for node in ast.walk(tree):
        hits = []
        if isinstance(node, ast.Compare):
            hits = [n for side in [node.left, *node.comparators] for n in literal_names(side)]
        elif isinstance(node, ast.Dict):
            hits = [n for key in node.keys if key is not None for n in literal_names(key)]
        elif isinstance(node, ast.Subscript):
            hits = literal_names(node.slice)
        elif isinstance(node, ast.keyword) and node.arg == "strategy":
            hits = literal_names(node.value)
        elif isinstance(node, ast.match_case):
            hits = [n for sub in ast.walk(node.pattern) for n in literal_names(sub)]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            hits = quoted.findall(node.value)
        found += [(node.lineno if hasattr(node, "lineno") else node.pattern.lineno, n) for n in hits]
    return found


def test_no_module_outside_the_strategies_names_a_strategy():
    offenders = []
    for path in MODULES:
        if path.relative_to(PACKAGE).parts[0] == "strategies":
            continue
        for line, name in strategy_names_in(ast.parse(path.read_text())):
            offenders.append(f"{path.relative_to(REPO)}:{line} names '{name}'")
    # `hf-tl ensemble` is a command of that name, not a test of the strategy's name.
    offenders = [o for o in offenders if not (o.startswith("hf_tl/cli.py:") and o.endswith("names 'ensemble'")
                                              and _line(PACKAGE / "cli.py", o).startswith("COMMANDS = {"))]
    assert offenders == []


def _line(path, offender: str) -> str:
    return path.read_text().splitlines()[int(offender.split(":")[1].split()[0]) - 1]


def test_the_name_check_catches_a_branch_a_table_and_a_message():
    code = ('"""Docs may say ``frozen``."""\nif config.strategy.strategy == "setfit": pass\nflags = {"lora": 1}\n'
            'x = flags["lora"]\nraise ValueError("strategy \'partial\' needs num_layers")\nbuild(strategy="full")\n'
            'ok = batch["features_b"]\n')
    assert sorted(n for _, n in strategy_names_in(ast.parse(code))) == ["full", "lora", "lora", "partial", "setfit"]


def import_graph() -> dict[str, set[str]]:
    """hf_tl module -> the hf_tl modules it imports (function-level imports included; TYPE_CHECKING ones not)."""
    modules = {module_name(p): p for p in MODULES}

    def resolve(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):  # annotation-only imports are never executed
            if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
                node.body = []
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                deps |= {resolve(a.name) for a in node.names if a.name.startswith("hf_tl")}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hf_tl"):
                deps |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else resolve(node.module)
                         for a in node.names}
        graph[name] = deps - {None, name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 40 and "hf_tl.runs.base" in graph
    assert cycles(graph) == []
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]  # the check itself finds a cycle


@pytest.mark.parametrize("module", ["hf_tl.training.loop", "hf_tl.strategies.base"])
def test_lower_layers_do_not_reach_up(module):
    """The optimizer loop knows nothing of run kinds; strategies know nothing of configs or runs."""
    graph = import_graph()
    seen, todo = set(), [module]
    while todo:
        for dep in graph[todo.pop()] - seen:
            seen.add(dep)
            todo.append(dep)
    assert not {m for m in seen if m.startswith(("hf_tl.runs", "hf_tl.config", "hf_tl.run_config", "hf_tl.builder"))}
