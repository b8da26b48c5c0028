"""Inputs a new user tried that got an odd answer: each now gets a clear error and its exit code.

Runs the real CLI (dlbase.cli.app, in-process) like test_bad_input.py: the documented exit
code, a one-line `error:` plus `what to do:`, no traceback, one JSON document under --json,
and nothing written when the verb refuses.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from dlbase.core import yamlio
from dlbase.core.errors import ExitCode

REPO = Path(__file__).resolve().parents[2]
DEFAULT = "torch2.6-cu124-runtime-debian12"
REF = "127.0.0.1:1/team/pytorch:1"  # never reached: every refusal below comes first


def refused(res, code: int) -> str:
    """The error text of a clean refusal with ``code``."""
    assert res.code == code, res.output
    assert "Traceback" not in res.output and "internal error" not in res.output, res.output
    assert "error:" in res.err and "what to do:" in res.err, res.err
    return res.err


# ------------------------------------------------------------------ keys


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DLBASE_SIGNING_PASSWORD", "a long test passphrase")
    return tmp_path


def test_key_generate_refuses_an_empty_out_and_writes_nothing(cli, in_tmp):
    res = cli("key", "generate", "--out", "")
    err = refused(res, int(ExitCode.INVALID_INPUT))
    assert "--out is empty" in err
    assert list(in_tmp.iterdir()) == []  # was: cosign.key and cosign.pub in the working folder


def test_key_generate_out_naming_a_file_says_so(cli, in_tmp):
    (in_tmp / "notes.txt").write_text("x")
    res = cli("key", "generate", "--out", "notes.txt", "--json")
    assert res.code == int(ExitCode.INVALID_INPUT), res.output
    doc = json.loads(res.out)
    assert "notes.txt is a file" in doc["message"] and "folder" in doc["message"]  # was "it File exists"
    assert "File exists" not in res.output
    assert sorted(p.name for p in in_tmp.iterdir()) == ["notes.txt"]


def test_key_generate_into_a_new_folder_still_works(cli, in_tmp):
    res = cli("key", "generate", "--out", "keys")
    assert res.code == 0, res.output
    assert sorted(p.name for p in (in_tmp / "keys").iterdir()) == ["cosign.key", "cosign.pub"]


@pytest.mark.parametrize("verb", [["push", DEFAULT, "--registry", "127.0.0.1:1", "--sign"],
                                  ["trust", REF, "--key"]])
def test_a_folder_given_as_a_key_is_named_a_folder(cli, in_tmp, verb):
    (in_tmp / "keys").mkdir()
    res = cli(*verb, "keys")
    err = refused(res, int(ExitCode.INVALID_INPUT))
    assert "is a folder" in err and "does not exist" not in err  # was: "keys does not exist"
    assert ("cosign.key" if "--sign" in verb else "cosign.pub") in err


def test_a_folder_holding_the_key_points_at_the_file(cli, in_tmp):
    assert cli("key", "generate", "--out", "keys").code == 0
    err = refused(cli("trust", REF, "--key", "keys"), int(ExitCode.INVALID_INPUT))
    assert "keys/cosign.pub" in err


@pytest.mark.parametrize("verb", [["push", DEFAULT, "--registry", "127.0.0.1:1", "--sign"],
                                  ["trust", REF, "--key"]])
def test_env_scheme_without_a_name_is_explained(cli, in_tmp, verb):
    err = refused(cli(*verb, "env://"), int(ExitCode.INVALID_INPUT))
    assert "names no environment variable" in err and "env://NAME" in err
    assert "$," not in err  # was: "should be in $, which is not set"


# ------------------------------------------------------------------ matrix file


def test_a_matrix_far_larger_than_any_real_one_is_refused_at_once(cli, project_copy):
    matrix = project_copy / "images" / "matrix.yaml"
    real = matrix.stat().st_size
    assert real * 50 < yamlio.MAX_BYTES  # the cap is far above the project's own matrix
    with matrix.open("a", encoding="utf-8") as fh:  # 10 MB of comment lines: minutes before
        fh.write(("# " + "x" * 98 + "\n") * 100_000)
    t0 = time.monotonic()
    res = cli("check", "--json")
    took = time.monotonic() - t0
    assert res.code == int(ExitCode.INVALID_INPUT), res.output
    doc = json.loads(res.out)
    assert "images/matrix.yaml" in doc["message"] and "10.1 MB" in doc["message"] and doc["hint"]
    assert took < 5, took


def test_a_large_matrix_under_the_cap_is_read_fast(tmp_path):
    """Below the cap the reader itself must be quick. The round-trip parser is quadratic in
    a run of comment lines (200 000 of them, 400 kB: ~12 s); libyaml takes ~10 ms and
    the pure-Python safe parser, the fallback without ruamel.yaml.clib, ~0.7 s."""
    path = tmp_path / "m.yaml"
    path.write_text("a: 1\n" + "#\n" * 200_000 + "b: [1, 2]\n", encoding="utf-8")
    assert path.stat().st_size < yamlio.MAX_BYTES
    t0 = time.monotonic()
    data = yamlio.load(path)
    assert time.monotonic() - t0 < 3.0
    assert data == {"a": 1, "b": [1, 2]}
    assert yamlio.lineno_of(data, "b") == 200_002 and yamlio.lineno_of(data["b"]) == 200_002


def test_line_numbers_of_keys_and_items(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("# c\ntop:\n  x: 1\n  y:\n    - name: a\n      k: 2\n", encoding="utf-8")
    data = yamlio.load(path)
    assert yamlio.lineno_of(data, "top") == 2
    assert yamlio.lineno_of(data["top"], "y") == 4
    assert yamlio.lineno_of(data["top"]["y"][0]) == 5 and yamlio.lineno_of(data["top"]["y"][0], "k") == 6
    assert yamlio.lineno_of(data, "missing") is None and yamlio.lineno_of(3) is None


def test_a_nul_byte_in_the_matrix_gets_its_line(cli, project_copy, lineno_of):
    matrix = project_copy / "images" / "matrix.yaml"
    text = matrix.read_text(encoding="utf-8")
    line = lineno_of(text, "flavor: notebook")
    matrix.write_text(text.replace("flavor: notebook", "flavor: note\x00book", 1), encoding="utf-8")
    err = refused(cli("check"), int(ExitCode.INVALID_INPUT))
    assert f"images/matrix.yaml:{line}:" in err and "U+0000 (NUL)" in err and "column" in err


def test_pin_still_keeps_the_matrix_comments(project_copy):
    """Writing keeps the round-trip loader: comments and quotes survive an edit."""
    matrix = project_copy / "images" / "matrix.yaml"
    data = yamlio.load(matrix, round_trip=True)
    data["bases"]["cuda11.8-base-ubuntu22.04"]["digest"] = "sha256:" + "a" * 64
    yamlio.dump_atomic(data, matrix)
    text = matrix.read_text(encoding="utf-8")
    assert "# What dlbase builds." in text and 'torch: "2.6.0"' in text
    assert yamlio.load(matrix)["bases"]["cuda11.8-base-ubuntu22.04"]["digest"] == "sha256:" + "a" * 64


# ------------------------------------------------------------------ project root


@pytest.mark.parametrize("kind", ["missing", "file", "empty folder"])
def test_a_wrong_dlbase_root_is_named(cli, tmp_path, monkeypatch, kind):
    target = tmp_path / "elsewhere"
    if kind == "file":
        target.write_text("x")
    elif kind == "empty folder":
        target.mkdir()
    monkeypatch.setenv("DLBASE_ROOT", str(target))
    err = refused(cli("check"), int(ExitCode.MISSING))
    assert f"DLBASE_ROOT={target}" in err  # was: "images/matrix.yaml: file not found"
    assert "DLBASE_ROOT" in err.split("what to do:", 1)[1]


def test_dlbase_root_without_a_matrix_is_fine_when_the_matrix_is_named(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("DLBASE_ROOT", str(tmp_path))
    res = cli("check", "--matrix", str(REPO / "images" / "matrix.yaml"),
              "--compat", str(REPO / "images" / "compat.yaml"))
    assert res.code == 0, res.output


# ------------------------------------------------------------------ locks


def test_a_lock_cut_in_the_middle_of_a_hash_is_damage_for_every_verb(cli, project_copy):
    lock = project_copy / "images" / DEFAULT / "requirements.lock"
    data = lock.read_bytes()
    cut = data.find(b"--hash=sha256:", 40000) + len("--hash=sha256:") + 30
    lock.write_bytes(data[:cut])
    for args in (["lock", "--check"], ["lock", "--check", DEFAULT], ["check"], ["render", "--check"]):
        res = cli(*args, "--json")
        assert res.code == int(ExitCode.DRIFT), (args, res.output)  # was 2 for all but `lock --check V`
        doc = json.loads(res.out)
        assert "malformed hash" in doc["message"] and doc["hint"]
