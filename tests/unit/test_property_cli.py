"""Property-based: whatever the matrix, compat table, lock and arguments, every verb that reads
them answers with a documented exit code, no traceback, exactly one JSON document under
--json, and leaves every file as it was when it fails.

Inputs are the committed files mutated by hypothesis (bytes cut, replaced or inserted; lines
dropped, duplicated or swapped; a YAML value replaced by a value of another type) and
generated arguments (variant names, repositories, registries). Verbs run in-process through
dlbase.cli.app (the real entry point) against a throw-away copy of the project; the verbs
that need Docker get DOCKER_HOST=tcp://127.0.0.1:1, so they stop at validation (2) or at the
daemon (6) and never touch the shared daemon. The number of examples is bounded
(DLBASE_HYPOTHESIS_EXAMPLES, default 150) to stay well inside CI's time.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from dlbase.core.errors import ExitCode
from tests.support import inprocess

REPO = Path(__file__).resolve().parents[2]
DOCUMENTED = {int(c) for c in ExitCode}
EXAMPLES = int(os.environ.get("DLBASE_HYPOTHESIS_EXAMPLES", "150"))
DEFAULT = "torch2.6-cu124-runtime-debian12"
TARGETS = ["images/matrix.yaml", "images/compat.yaml", f"images/{DEFAULT}/requirements.lock", None]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pristine") / "repo"
    root.mkdir()
    for rel in ("images", "templates", "ci", "docs"):
        if (REPO / rel).is_dir():
            shutil.copytree(REPO / rel, root / rel)
    for rel in ("README.md", ".hadolint.yaml"):
        shutil.copy2(REPO / rel, root / rel)
    return root


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------- mutations
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=False, width=32),
                    st.text(max_size=12), st.sampled_from(["3.10", "cu121", "2.6.0", "", "-", "http://x:1"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                      max_leaves=6)


@st.composite
def byte_mutation(draw, data: bytes) -> bytes:
    kind = draw(st.sampled_from(["cut", "replace", "insert", "random"]))
    at = draw(st.integers(0, max(len(data) - 1, 0)))
    if kind == "cut":
        return data[:at]
    if kind == "random":
        return draw(st.binary(max_size=512))
    blob = draw(st.binary(min_size=1, max_size=16))
    if kind == "replace":
        return data[:at] + blob + data[at + len(blob):]
    return data[:at] + blob + data[at:]


@st.composite
def line_mutation(draw, data: bytes) -> bytes:
    lines = data.decode("utf-8").splitlines(keepends=True)
    if not lines:
        return data
    i = draw(st.integers(0, len(lines) - 1))
    kind = draw(st.sampled_from(["drop", "dup", "swap", "indent"]))
    if kind == "drop":
        del lines[i]
    elif kind == "dup":
        lines.insert(i, lines[i])
    elif kind == "swap":
        j = draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
    else:
        lines[i] = "  " + lines[i]
    return "".join(lines).encode("utf-8")


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


@st.composite
def value_mutation(draw, data: bytes) -> bytes:
    """Replace one value anywhere in the YAML tree by a value of any type (the type confusions)."""
    yaml = YAML(typ="safe")
    tree = yaml.load(data.decode("utf-8"))
    paths = [p for p in _paths(tree) if p]
    if not paths:
        return data
    path = draw(st.sampled_from(paths))
    node = tree
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = draw(values)
    buf = io.StringIO()
    yaml.dump(tree, buf)
    return buf.getvalue().encode("utf-8")


@st.composite
def mutated(draw, pristine_root: Path):
    target = draw(st.sampled_from(TARGETS))
    if target is None:
        return None, None
    data = (pristine_root / target).read_bytes()
    kinds = [byte_mutation, line_mutation] + ([value_mutation] if target.endswith(".yaml") else [])
    return target, draw(draw(st.sampled_from(kinds))(data))


# ------------------------------------------------------------------------- arguments
names = st.one_of(st.sampled_from([DEFAULT, "torch2.6-cu118-devel-ubuntu22.04", "nope", ""]),
                  st.text(max_size=20))
addresses = st.one_of(st.sampled_from(["127.0.0.1:5000", "http://127.0.0.1:5000", "127.0.0.1:99999",
                                       "Dlbase/PyTorch", "a//b", "localhost:0", "[::1]:5000", "dlbase/pytorch"]),
                      st.text(max_size=24))


@st.composite
def argv(draw):
    verb = draw(st.sampled_from(["check", "check-one", "render", "render-check", "lock-check", "lock-check-one",
                                 "pin", "build", "push", "verify", "report", "diff", "base", "lint"]))
    args = {
        "check": lambda: ["check"],
        "check-one": lambda: ["check", "--variant", draw(names)],
        "render": lambda: ["render"],
        "render-check": lambda: ["render", "--check"],
        "lock-check": lambda: ["lock", "--check"],
        "lock-check-one": lambda: ["lock", "--check", draw(names)],
        "pin": lambda: ["pin", draw(st.one_of(st.sampled_from(["debian12", "nope"]), st.text(max_size=12)))],
        "build": lambda: ["build", draw(names), "--repository", draw(addresses)],
        "push": lambda: ["push", draw(names), "--registry", draw(addresses)],
        "verify": lambda: ["verify", draw(names), "--shm-size", draw(st.sampled_from(["8g", "64m", "lots", ""]))],
        "report": lambda: ["report", draw(st.one_of(names, addresses))],
        "base": lambda: ["base", "bootstrap", "--mirror", draw(st.one_of(addresses, st.just("http://deb.debian.org/debian")))],
        "lint": lambda: ["lint"],
        "diff": lambda: ["diff", draw(st.one_of(names, addresses)), draw(st.one_of(names, addresses))],
    }[verb]()
    if draw(st.booleans()):
        args.append("--json")
    return args


def _run(root: Path, args: list[str]) -> tuple[int, str, str]:
    return inprocess.run(args, {"DLBASE_ROOT": str(root), "DOCKER_HOST": "tcp://127.0.0.1:1"})


@settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_every_verb_answers_any_input_cleanly(data, pristine: Path, tmp_path_factory) -> None:
    target, content = data.draw(mutated(pristine), label="mutation")
    args = data.draw(argv(), label="argv")
    root = tmp_path_factory.mktemp("case") / "repo"
    shutil.copytree(pristine, root)
    if target is not None:
        (root / target).write_bytes(content)
    before = _digest(root)

    code, out, err = _run(root, args)

    event(f"{args[0]} -> exit {code}")  # --hypothesis-show-statistics shows what was reached
    where = f"dlbase {' '.join(map(repr, args))} with {target or 'no'} mutation:\n{err[-2000:]}"
    assert code in DOCUMENTED, f"undocumented exit {code}: {where}"
    assert "Traceback" not in out + err and "internal error" not in err, where
    if "--json" in args:
        doc = json.loads(out)  # exactly one document, or this raises
        assert isinstance(doc, dict) and doc["exit_code"] == code and doc["ok"] is (code == 0), where
        if code:
            assert doc.get("message"), where
    if code != 0:
        assert "error:" in err.lower(), where  # click words usage errors "Error:"
        assert _digest(root) == before, f"files changed by a failing run: {where}"
    assert not [p for p in root.rglob(".*.tmp")], f"temporary files left: {where}"
    shutil.rmtree(root.parent, ignore_errors=True)
