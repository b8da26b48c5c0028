"""Hostile documents, one reader at a time, through the real CLI.

Every JSON or YAML document dlbase reads from a file or from the network goes through one
bounded reader (dlbase.core.documents, dlbase.core.yamlio). Here each reader is fed, by
hypothesis, random bytes, deep nesting (up to 200,000 levels), a real document with one
field replaced by a value of another type, and huge numbers (5000 digits, 1e999, NaN),
and the verb that reads it must answer with a documented exit code, no traceback, and
with --json exactly one JSON document. Then one example per problem the review found,
each of which failed before the reader (RecursionError, AttributeError, OverflowError, a
segfault, a silently dropped record, a hidden age warning).

Examples per reader: DLBASE_HOSTILE_EXAMPLES (default 20), so the module stays well under
a minute. Verbs that would reach Docker get DOCKER_HOST=tcp://127.0.0.1:1 (exit 6).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlbase.core import documents
from dlbase.core.errors import ExitCode
from dlbase.trust import keys
from tests.support import inprocess
from tests.support.odd_registry import REPO, TAG, answer, odd_registry, signed_image

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data" / "osv"
RECORD = DATA / "pypi" / "PYSEC-2025-208.json"  # torch < 2.7.1: the default variant's lock has 2.6.0
VEX_DOC = REPO_ROOT / "images" / "vex" / "debian12-apt-CVE-2011-3374.json"
DOCUMENTED = {int(c) for c in ExitCode}
EXAMPLES = int(os.environ.get("DLBASE_HOSTILE_EXAMPLES", "20"))
DIGEST_REF = "127.0.0.1:1/x/y@sha256:" + "a" * 64
HUGE = "\u0000HUGE\u0000"  # a placeholder replaced by a number literal after json.dumps

SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


# ------------------------------------------------------------------------ running the CLI

def run(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`dlbase ARGS` in-process, this repository its project, Docker out of reach."""
    return inprocess.run(args, {"DLBASE_ROOT": str(REPO_ROOT), "DOCKER_HOST": "tcp://127.0.0.1:1", **(env or {})})


def clean(code: int, out: str, err: str, args: list[str]) -> dict:
    """The checks every hostile input must pass; the JSON document (args hold --json)."""
    where = f"dlbase {' '.join(args)}:\n{err[-1500:]}"
    assert code in DOCUMENTED, f"undocumented exit {code}: {where}"
    assert "Traceback" not in out + err and "internal error" not in err, where
    doc = json.loads(out)  # exactly one document, or this raises
    assert isinstance(doc, dict) and doc["exit_code"] == code and doc["ok"] is (code == 0), where
    if code:
        assert doc.get("message"), where
    return doc


# ------------------------------------------------------------------------ hostile documents

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.floats(allow_nan=True),
                    st.text(max_size=8), st.just(HUGE))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                      max_leaves=5)
HUGE_LITERALS = st.sampled_from(["9" * 5000, "1e999", "-1e999", "1" + "0" * 400 + ".5", "NaN", "Infinity"])


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, prefix + (i,))
    return found


def _replaced(node: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    copy = dict(node) if isinstance(node, dict) else list(node)
    copy[path[0]] = _replaced(node[path[0]], path[1:], value)
    return copy


@st.composite
def wrong_type(draw, real: Any) -> bytes:
    """The real document with one part (anywhere, the whole included) replaced."""
    path = draw(st.sampled_from(_paths(real)))
    text = json.dumps(_replaced(real, path, draw(values)))
    return text.replace(json.dumps(HUGE), draw(HUGE_LITERALS)).encode()


def deep(opener: bytes, closer: bytes = b"") -> st.SearchStrategy[bytes]:
    return st.integers(33, 200_000).map(lambda n: opener * n + closer * n)


def hostile_json(real: Any) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=1024), deep(b"["), deep(b'{"a":', b"}"), deep(b"[", b"]"),
                     wrong_type(real), wrong_type(real))


def hostile_yaml(real_text: str, real: Any) -> st.SearchStrategy[bytes]:
    """YAML is a superset of JSON: ``wrong_type`` of the parsed file is a YAML file too."""
    return st.one_of(st.binary(max_size=1024), deep(b"publishers: ["), deep(b"- "), deep(b"{a: ", b"}"),
                     wrong_type(real), wrong_type(real),
                     st.sampled_from(["max_age: 99999999999999w", "max_age: " + "9" * 5000 + "h",
                                      "max_age: 1e999d", "count: 99999999999999999999999"]).map(
                         lambda line: (real_text + "require:\n  gpu:\n    " + line + "\n").encode()))


# ------------------------------------------------------------------------ one property per reader

@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


def _fresh(folder: Path, name: str, body: bytes) -> Path:
    """``folder`` holding only ``name`` with ``body`` (each example starts from nothing)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / name).write_bytes(body)
    return folder


@SETTINGS
@given(body=hostile_json(json.loads(RECORD.read_text())))
def test_osv_record_reader(body: bytes, workdir: Path) -> None:
    db = _fresh(workdir / "db", "hostile.json", body)
    shutil.copy(DATA / "pypi" / "PYSEC-2026-2286.json", db)  # a good record beside it
    args = ["scan", "--from-lock", "--db", str(db), "--fail-on", "low", "--json"]
    doc = clean(*run(args), args)
    assert doc["exit_code"] in (1, 2), doc  # a finding (2026-2286 affects 2.6.0) or the hostile record named


@SETTINGS
@given(body=hostile_json(json.loads(VEX_DOC.read_text())))
def test_vex_reader(body: bytes, workdir: Path) -> None:
    folder = _fresh(workdir / "vex", "hostile.json", body)
    args = ["scan", "--from-lock", "--db", str(DATA), "--vex", str(folder), "--json"]
    clean(*run(args), args)


@pytest.fixture(scope="module")
def pubs(workdir: Path) -> Path:
    pair = keys.generate()
    (workdir / "release.pub").write_bytes(keys.public_pem(pair))
    (workdir / "cosign.key").write_bytes(keys.encrypt_private_key(pair, b"pw"))
    return workdir


POLICY = "publishers:\n  - key: release.pub\n"
POLICY_DATA = {"publishers": [{"key": "release.pub"}], "verifiers": [{"label": "h", "key": "release.pub"}],
               "require": {"gpu": {"count": 1, "max_age": "30d"}, "scan": {"max_age": "7d", "fail_on": "high"},
                           "repositories": ["127.0.0.1:1/x/y"]}}


@SETTINGS
@given(body=hostile_yaml(POLICY, POLICY_DATA))
def test_trust_policy_reader(body: bytes, pubs: Path) -> None:
    path = pubs / "policy.yaml"
    path.write_bytes(body)
    args = ["trust", DIGEST_REF, "--policy", str(path), "--json"]
    clean(*run(args), args)


def _pem_body(pem: bytes) -> Any:
    inner = b"".join(pem.strip().splitlines()[1:-1])
    return json.loads(base64.b64decode(inner))


@st.composite
def hostile_key(draw, pem: bytes) -> bytes:
    body = draw(hostile_json(_pem_body(pem)))
    armour = draw(st.sampled_from([keys.PEM_TYPE, "PUBLIC KEY", "X"]))
    return (f"-----BEGIN {armour}-----\n".encode() + base64.encodebytes(body) + f"-----END {armour}-----\n".encode()
            if draw(st.booleans()) else body)


@SETTINGS
@given(data=st.data())
def test_private_key_reader(data: st.DataObject, pubs: Path) -> None:
    path = pubs / "hostile.key"
    path.write_bytes(data.draw(hostile_key((pubs / "cosign.key").read_bytes())))
    args = ["scan", DIGEST_REF, "--attest", "--key", str(path), "--db", str(DATA), "--json"]
    clean(*run(args, {keys.PASSWORD_ENV: "pw"}), args)


@pytest.fixture(scope="module")
def registry():
    pair = keys.generate()
    with odd_registry() as reg:
        reg.digest = signed_image(reg, pair)
        reg.pair = pair
        yield reg


@SETTINGS
@given(data=st.data())
def test_registry_manifest_reader(data: st.DataObject, registry, workdir: Path) -> None:
    pub = workdir / "registry.pub"
    pub.write_bytes(keys.public_pem(registry.pair))
    body = data.draw(hostile_json(json.loads(registry.manifests[TAG])))
    registry.on("HEAD", f"/v2/{REPO}/manifests/{TAG}", answer(200))  # no digest header: the body is read
    registry.on("GET", f"/v2/{REPO}/manifests/{TAG}", answer(200, body))
    args = ["trust", f"{registry.host}/{REPO}:{TAG}", "--key", str(pub), "--json"]
    doc = clean(*run(args), args)
    assert doc["exit_code"] != 0 or json.loads(body) == json.loads(registry.manifests[TAG]), doc


PAGE = {"meta": {"api-version": "1.1"}, "name": "torch",
        "files": [{"filename": "torch-2.6.0-cp312-cp312-manylinux_2_28_x86_64.whl",
                   "url": "torch-2.6.0-cp312-cp312-manylinux_2_28_x86_64.whl",
                   "hashes": {"sha256": "ab" * 32}, "size": 10}]}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project") / "repo"
    root.mkdir()
    for rel in ("images", "templates"):
        shutil.copytree(REPO_ROOT / rel, root / rel)
    for rel in ("README.md", ".hadolint.yaml"):
        shutil.copy2(REPO_ROOT / rel, root / rel)
    return root


@SETTINGS
@given(body=hostile_json(PAGE))
def test_index_answer_reader(body: bytes, registry, project: Path) -> None:
    registry.on("GET", "/simple/torch/", answer(200, body, {"Content-Type": "application/vnd.pypi.simple.v1+json"}))
    args = ["compat", "add", "torch==2.6.0", "--index", f"{registry.url}/simple/", "--python", "3.12",
            "--dry-run", "--json"]
    doc = clean(*run(args, {"DLBASE_ROOT": str(project)}), args)
    assert doc["exit_code"] != 0, doc  # the fake serves no wheel metadata: never a derived entry


# ------------------------------------------------------------------------ the examples the review found

def test_osv_record_nested_100000_deep_is_exit_2_naming_the_file(workdir: Path) -> None:
    db = workdir / "deep-db"
    db.mkdir()
    (db / "deep.json").write_bytes(b"[" * 100_000)
    args = ["scan", "--from-lock", "--db", str(db), "--json"]
    doc = clean(*run(args), args)
    assert doc["exit_code"] == 2 and f"{db / 'deep.json'}: nested more than" in doc["message"], doc


def test_osv_record_with_affected_a_string_is_exit_2_naming_the_field(workdir: Path) -> None:
    db = workdir / "typed-db"
    db.mkdir()
    record = {**json.loads(RECORD.read_text()), "affected": "torch"}
    (db / "typed.json").write_text(json.dumps(record))
    args = ["scan", "--from-lock", "--db", str(db), "--json"]
    doc = clean(*run(args), args)
    assert doc["exit_code"] == 2 and "'affected' must be an array, not a string" in doc["message"], doc
    assert "typed.json" in doc["message"], doc


def test_an_oversized_record_is_refused_before_it_is_parsed(workdir: Path) -> None:
    db = workdir / "big-db"
    db.mkdir()
    cap = documents.LIMITS["osv-record"].max_bytes
    (db / "big.json").write_bytes(b"{" * (cap + 4096))
    started = time.monotonic()
    args = ["scan", "--from-lock", "--db", str(db), "--json"]
    doc = clean(*run(args), args)
    assert doc["exit_code"] == 2 and f"more than {cap:,} bytes, too big for an OSV advisory" in doc["message"], doc
    assert time.monotonic() - started < 10


def test_vex_document_nested_deep_is_exit_2(workdir: Path) -> None:
    folder = workdir / "deep-vex"
    folder.mkdir()
    (folder / "deep.json").write_bytes(b'{"a":' * 100_000)
    args = ["scan", "--from-lock", "--db", str(DATA), "--vex", str(folder), "--json"]
    doc = clean(*run(args), args)
    assert doc["exit_code"] == 2 and "deep.json: nested more than" in doc["message"], doc


@pytest.mark.parametrize("text,needle", [
    ("publishers: " + "[" * 100_000, "nested more than 32 levels"),  # segfaulted the interpreter (exit 139)
    ("publishers:\n" + "- " * 30_000 + "x\n", "nested more than 32 levels"),
    (POLICY + "require:\n  scan:\n    max_age: 99999999999999w\n", "longer than 100,000 days"),  # OverflowError
])
def test_hostile_policy_files_are_exit_2(pubs: Path, text: str, needle: str) -> None:
    path = pubs / "hostile-policy.yaml"
    path.write_text(text)
    args = ["trust", DIGEST_REF, "--policy", str(path), "--json"]
    doc = clean(*run(args), args)
    assert doc["exit_code"] == 2 and needle in doc["message"] and str(path) in doc["message"], doc


@pytest.mark.parametrize("body,needle", [(b"[" * 20_000, "nested more than"),  # was a RecursionError
                                         (b"[1, 2]", "must be a JSON object, not an array")])
def test_a_key_whose_pem_body_is_not_an_envelope_is_exit_2(pubs: Path, body: bytes, needle: str) -> None:
    path = pubs / "odd.key"
    path.write_bytes(f"-----BEGIN {keys.PEM_TYPE}-----\n".encode() + base64.encodebytes(body)
                     + f"-----END {keys.PEM_TYPE}-----\n".encode())
    args = ["scan", DIGEST_REF, "--attest", "--key", str(path), "--db", str(DATA), "--json"]
    doc = clean(*run(args, {keys.PASSWORD_ENV: "pw"}), args)
    assert doc["exit_code"] == 2 and needle in doc["message"] and str(path) in doc["message"], doc


def test_an_index_answering_a_list_is_exit_11_naming_the_url(registry, project: Path) -> None:
    registry.on("GET", "/simple/torch/", answer(200, b"[]", {"Content-Type": "application/vnd.pypi.simple.v1+json"}))
    args = ["compat", "add", "torch==2.6.0", "--index", f"{registry.url}/simple/", "--dry-run", "--json"]
    doc = clean(*run(args, {"DLBASE_ROOT": str(project)}), args)
    assert doc["exit_code"] == 11 and f"{registry.url}/simple/torch/" in doc["message"], doc


def test_a_manifest_nested_deep_is_exit_11(registry, workdir: Path) -> None:
    pub = workdir / "deep-registry.pub"
    pub.write_bytes(keys.public_pem(registry.pair))
    registry.on("HEAD", f"/v2/{REPO}/manifests/{TAG}", answer(200))
    registry.on("GET", f"/v2/{REPO}/manifests/{TAG}", answer(200, b"[" * 100_000))
    args = ["trust", f"{registry.host}/{REPO}:{TAG}", "--key", str(pub), "--json"]
    doc = clean(*run(args), args)
    assert doc["exit_code"] == 11 and "nested more than" in doc["message"], doc


# ------------------------------------------------------------------------ scan: no silent false negatives

def _banana_db(root: Path) -> Path:
    """The test database, plus a torch record whose only range starts at "banana"."""
    db = root / "banana-db"
    shutil.copytree(DATA, db)
    record = json.loads(RECORD.read_text())
    record.update(id="BANANA-2026-1", aliases=[])
    for affected in record["affected"]:
        affected.pop("versions", None)
        for rng in affected.get("ranges", []):
            for event in rng["events"]:
                if "introduced" in event:
                    event["introduced"] = "banana"
    (db / "pypi" / "BANANA-2026-1.json").write_text(json.dumps(record))
    return db


def test_a_record_that_cannot_be_evaluated_is_reported_and_counted(workdir: Path) -> None:
    db = _banana_db(workdir)
    args = ["scan", "--from-lock", "--db", str(db), "--max-db-age", "100000", "--json"]
    doc = clean(*run(args), args)
    assert doc["exit_code"] == 0, doc
    rows = doc["could_not_evaluate"]
    assert [(r["id"], r["package"]) for r in rows] == [("BANANA-2026-1", "torch")], rows
    assert "'banana' is not a PyPI version" in rows[0]["reason"], rows
    code, out, _err = run(["scan", "--from-lock", "--db", str(db), "--max-db-age", "100000"])
    assert "could not evaluate: 1 advisory record(s)" in out and "BANANA-2026-1" in out, out


def test_a_record_that_cannot_be_evaluated_fails_fail_on(workdir: Path) -> None:
    db = _banana_db(workdir / "b")
    args = ["scan", "--from-lock", "--db", str(db), "--fail-on", "critical", "--json"]  # no CRITICAL finding
    doc = clean(*run(args), args)
    assert doc["exit_code"] == 1 and "could not be evaluated" in doc["message"], doc
    assert any("BANANA-2026-1" in line for line in doc["details"]), doc


def test_a_modified_date_in_the_future_is_an_input_error(workdir: Path) -> None:
    db = workdir / "future-db"
    shutil.copytree(DATA, db)
    record = {**json.loads(RECORD.read_text()), "id": "FUTURE-1", "modified": "9999-01-01T00:00:00Z"}
    (db / "pypi" / "FUTURE-1.json").write_text(json.dumps(record))
    args = ["scan", "--from-lock", "--db", str(db), "--max-db-age", "1", "--json"]
    doc = clean(*run(args), args)
    assert doc["exit_code"] == 2 and "FUTURE-1.json" in doc["message"] and "in the future" in doc["message"], doc


@pytest.mark.parametrize("age", ["nan", "inf", "-1", "1e300"])
def test_max_db_age_must_be_a_finite_number_of_days(age: str) -> None:
    args = ["scan", "--from-lock", "--db", str(DATA), "--max-db-age", age, "--json"]
    doc = clean(*run(args), args)
    assert doc["exit_code"] == 2 and "--max-db-age" in doc["message"], doc
