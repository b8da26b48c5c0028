"""The package's shape: floors of packages, no import cycle, and the daemon-free modules stay daemon-free.

:data:`FLOORS` is the one statement of which package may import which: a module imports
only its own package and packages on floors below its own, so no import points up and
no two packages need each other.

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
# The packages of dlbase, lowest floor first ("dlbase" is the package's own __init__, its
# version). A package imports only its own modules and those of lower floors; packages on
# one floor are independent of each other. A new package must be given its floor here.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("dlbase", "core"),        # errors, paths, digests, references: facts with no dlbase above them
    ("engine", "registry"),    # the Docker daemon; an OCI registry over HTTP
    ("define",),               # the project: matrix, compat, locks, specs, rendering
    ("image",),                # an image on the daemon: finding it, reading facts from inside it
    ("vuln", "verify"),        # advisories matched to an image; tests run against an image
    ("trust",),                # signatures and attestations over verify's and vuln's results
    ("examine",),              # reports, diffs and layers of images
    ("build", "publish"),      # making an image; pushing it with its evidence
    ("bench",),                # measurements of build, pull and update
    ("cli",),                  # the command line
    ("__main__",),             # python -m dlbase
)
# Imports that still point up, each with who removes it. Empty is the goal.
UPWARD_ALLOWED: dict[tuple[str, str], str] = {}
# Modules that must work without Docker (DESIGN: matrix, compat, render and lock never import docker).
DAEMON_FREE = ("define.matrix", "define.compat", "define.render", "define.lock", "define.spec",
               "define.tags", "define.layering", "trust.sbom", "core.imageref", "core.root",
               "trust.statements", "trust.simplesign", "trust.policy", "trust.policyfile", "core.gpu",
               "core.sizes", "core.fileerrors", "core.cachedir", "core.fsutil", "core.fileset", "trust.predicates",
               "verify.junit", "verify.report", "verify.jupyter", "verify.children",
               "vuln.osv", "vuln.versions", "vuln.severity", "vuln.db", "image.inventory", "vuln.match",
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


def package_of(module: str) -> str:
    """``dlbase.trust.policy`` -> ``trust``; ``dlbase`` itself -> ``dlbase``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def floor_of(package: str) -> int:
    return next(i for i, floor in enumerate(FLOORS) if package in floor)


def test_every_package_has_a_floor(graph: dict[str, set[str]]) -> None:
    placed = [p for floor in FLOORS for p in floor]
    assert len(placed) == len(set(placed)), "a package is on two floors"
    missing = sorted({package_of(m) for m in graph} - set(placed))
    assert not missing, f"packages without a floor in FLOORS: {missing}"


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import from a package to one on its own floor or above, ``a -> b`` per module pair."""
    found = []
    for name, deps in sorted(graph.items()):
        mine = package_of(name)
        for dep in sorted(deps):
            theirs = package_of(dep)
            if theirs != mine and floor_of(theirs) >= floor_of(mine):
                found.append(f"{name} -> {dep}")
    return found


def test_no_import_points_up_a_floor(graph: dict[str, set[str]]) -> None:
    allowed = {f"{a} -> {b}" for a, b in UPWARD_ALLOWED}
    offenders = [edge for edge in upward_imports(graph) if edge not in allowed]
    assert not offenders, "imports to a package on the same floor or above (see FLOORS):\n" + "\n".join(offenders)
    stale = sorted(allowed - set(upward_imports(graph)))
    assert not stale, f"UPWARD_ALLOWED names imports that no longer exist, drop them: {stale}"


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Package -> the other packages its modules import."""
    found: dict[str, set[str]] = {}
    for name, deps in graph.items():
        found.setdefault(package_of(name), set()).update(package_of(d) for d in deps)
    return {p: deps - {p} for p, deps in found.items()}


def package_cycles(packages: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Pairs of packages each of which reaches the other."""
    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for dep in packages.get(todo.pop(), ()):
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen

    reaches = {p: reach(p) for p in packages}
    return sorted((a, b) for a in packages for b in reaches[a] if a < b and a in reaches.get(b, ()))


def test_no_package_cycle(graph: dict[str, set[str]]) -> None:
    """Whatever FLOORS says, no two packages may need each other (the allowed upward imports
    excepted while they last)."""
    allowed = {(a, b) for a, b in UPWARD_ALLOWED}
    kept = {name: {d for d in deps if (name, d) not in allowed} for name, deps in graph.items()}
    cycles = package_cycles(package_graph(kept))
    assert not cycles, "package cycles: " + ", ".join(f"{a}<->{b}" for a, b in cycles)


def test_the_package_checks_see_a_cycle_and_an_upward_import() -> None:
    """The checks above can fail: a made-up graph with trust -> examine -> trust is caught by both."""
    made_up = {"dlbase.trust.attach": {"dlbase.examine.report"}, "dlbase.examine.report": {"dlbase.trust.sbom"},
               "dlbase.trust.sbom": set()}
    assert package_cycles(package_graph(made_up)) == [("examine", "trust")]
    assert upward_imports(made_up) == ["dlbase.trust.attach -> dlbase.examine.report"]


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
