"""The package's shape: no import cycle, and the daemon-free modules stay daemon-free.

Imports are read from the source (module level, outside ``if TYPE_CHECKING:``), so a
cycle hidden behind a late import inside a function is caught too. Daemon-free means
transitively: nothing the module imports, nor anything those import, nor any package
``__init__`` Python runs on the way, reaches docker or the engine.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "tools" / "dlbase"
# Modules that must work without Docker (DESIGN: matrix, compat, render and lock never import docker).
DAEMON_FREE = ("define.matrix", "define.compat", "define.render", "define.lock", "define.spec",
               "define.tags", "define.layering", "trust.sbom", "core.imageref", "core.root",
               "trust.statements", "trust.simplesign", "trust.policy", "trust.policyfile", "core.gpu",
               "core.sizes", "core.fileerrors", "core.cachedir", "core.fsutil", "core.fileset", "trust.predicates",
               "verify.junit", "verify.report", "verify.jupyter", "verify.children",
               "vuln.osv", "vuln.versions", "vuln.severity", "vuln.db", "vuln.inventory", "vuln.match",
               "vuln.vex", "vuln.report", "vuln.update", "vuln.attestation",
               "core.reference", "core.digest", "core.deadline", "core.httpget", "core.folderswap",
               "define.simpleindex", "define.wheeltags", "define.wheelmeta", "vuln.ecosystems",
               "registry.client", "registry.limits", "registry.auth", "registry.answers")
# Pure source inside the engine package: its own imports are checked, but importing it runs
# dlbase/engine/__init__.py, which loads docker, so the transitive check cannot apply.
DAEMON_FREE_SOURCE = ("engine.buildstream",)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every dlbase module (and top-level third-party name) ``path`` imports, anywhere but
    under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py") if "suites" not in p.parts}
    return {name: {m for m in imports(path) if m in modules and m != name} for name, path in modules.items()}


def test_no_import_cycle(graph: dict[str, set[str]]) -> None:
    """A package's __init__ importing its own submodules is not a cycle of concerns."""
    def deps(name: str) -> set[str]:
        return {d for d in graph[name] if not (name.startswith(d + ".") or d.startswith(name + "."))}

    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        for dep in deps(name):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep] if dep in stack else [name, dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def _is_docker(name: str) -> bool:
    return name == "docker" or name.startswith("docker.")


def _is_engine(name: str) -> bool:
    return name == "dlbase.engine" or name.startswith("dlbase.engine.")


def _packages_of(name: str) -> list[str]:
    """The packages whose ``__init__`` Python runs to import ``name`` (dlbase.trust for dlbase.trust.policy)."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def reached(name: str) -> dict[str, list[str]]:
    """Every dlbase module importing ``name`` loads, with the chain that reaches it."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py") if "suites" not in p.parts}
    chains: dict[str, list[str]] = {}
    todo = [(name, [name])]
    while todo:
        current, chain = todo.pop()
        if current in chains or current not in modules:
            continue
        chains[current] = chain
        for dep in [*_packages_of(current), *imports(modules[current])]:
            if dep in modules and dep not in chains:
                todo.append((dep, [*chain, dep]))
    return chains


@pytest.mark.parametrize("name", DAEMON_FREE + DAEMON_FREE_SOURCE)
def test_daemon_free_modules_import_neither_docker_nor_the_engine(name: str) -> None:
    path = PACKAGE / (name.replace(".", "/") + ".py")
    found = imports(path)
    assert not {m for m in found if _is_docker(m)}, f"{name} imports docker"
    if name not in DAEMON_FREE_SOURCE:
        assert not {m for m in found if _is_engine(m)}, f"{name} imports the engine"


@pytest.mark.parametrize("name", DAEMON_FREE)
def test_daemon_free_modules_reach_neither_docker_nor_the_engine_transitively(name: str) -> None:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py") if "suites" not in p.parts}
    chains = reached(f"dlbase.{name}")
    engine = sorted(m for m in chains if _is_engine(m))
    assert not engine, f"{name} reaches the engine: {' -> '.join(chains[engine[0]])}"
    docker = sorted(m for m in chains if any(_is_docker(i) for i in imports(modules[m])))
    assert not docker, f"{name} reaches docker: {' -> '.join(chains[docker[0]])} imports docker"


def test_the_transitive_check_sees_a_chain_through_another_module() -> None:
    """A module that imports the engine only through another one (doctor) is caught."""
    chains = reached("dlbase.verify.doctor")
    assert "dlbase.engine" in chains and any(_is_engine(m) for m in chains)
