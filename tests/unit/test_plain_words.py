"""User text names what a value is in the document's words, never a Python class name.

Before: "repository must be a string like dlbase/pytorch, not NoneType", a policy rule
"must be a mapping, not LineList", "holds a _RSAPrivateKey", "answered a JSON list"."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dlbase.core.errors import DlbaseError
from dlbase.core.kinds import kind_of

PYTHON_NAMES = re.compile(r"'None'|\b(NoneType|LineList|LineMap|dict|str|int|float|bool|tuple|"
                          r"_?RSA\w*Key|\w+PrivateKey|\w+PublicKey)\b")
ROOT = Path(__file__).resolve().parents[2]


def test_kind_of_speaks_yaml_and_json():
    assert kind_of(None) == "empty (no value)" and kind_of(None, "json") == "null"
    assert kind_of([1]) == "a list" and kind_of([1], "json") == "an array"
    assert kind_of({"a": 1}) == "a mapping" and kind_of({}, "json") == "an object"
    assert kind_of(True) == "true/false" and kind_of(3) == "a whole number" and kind_of("x", "json") == "a string"


def _message(exc: DlbaseError) -> str:
    return " ".join([exc.message, exc.hint or "", *exc.details])


def test_matrix_repository_left_empty(tmp_path):
    from dlbase.define.project import Project

    for rel in ("matrix.yaml", "compat.yaml"):
        text = (ROOT / "images" / rel).read_text()
        (tmp_path / "images").mkdir(exist_ok=True)
        (tmp_path / "images" / rel).write_text(re.sub(r"(?m)^repository: .*$", "repository:", text))
    with pytest.raises(DlbaseError) as info:
        Project.discover(tmp_path).matrix
    text = _message(info.value)
    assert "empty (no value)" in text and not PYTHON_NAMES.search(text), text


def test_policy_rule_that_is_a_list(tmp_path):
    from dlbase.trust import policyfile

    path = tmp_path / "policy.yaml"
    path.write_text("publishers:\n  - [a, b]\n")
    with pytest.raises(DlbaseError) as info:
        policyfile.load(path)
    text = _message(info.value)
    assert "a list" in text and not PYTHON_NAMES.search(text), text


def test_a_key_of_another_algorithm_is_named_by_algorithm(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from dlbase.trust import keys

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(DlbaseError) as info:
        keys.public_from_pem(pem, "cosign.pub")
    text = _message(info.value)
    assert "an RSA key" in text and not PYTHON_NAMES.search(text), text


@pytest.mark.parametrize("body, words", [(b"[]", "an array"), (b'"x"', "a string"), (b"null", "null")])
def test_registry_answer_of_the_wrong_kind(body, words):
    from dlbase.registry import answers

    with pytest.raises(DlbaseError) as info:
        answers.json_object(body, "manifest of x")
    text = _message(info.value)
    assert words in text and not PYTHON_NAMES.search(text), text
    with pytest.raises(DlbaseError) as info:
        answers.layers({"layers": {"a": 1}}, "manifest of x")
    assert "an object" in info.value.message and "dict" not in info.value.message


# --------------------------------------------------------------------------- a folder or a device, not "does not exist"
def test_is_file_calls_a_folder_and_a_device_what_they_are(tmp_path):
    from dlbase.core import fileerrors
    from dlbase.core.errors import FileProblem

    assert fileerrors.is_file(tmp_path / "absent") is False
    (tmp_path / "real").write_text("x")
    assert fileerrors.is_file(tmp_path / "real") is True
    with pytest.raises(FileProblem, match="lock file .* is a folder, not a file"):
        fileerrors.is_file(tmp_path, what="lock file")
    with pytest.raises(FileProblem, match="is a character device, not a file"):
        fileerrors.is_file(Path("/dev/null"))
    with pytest.raises(FileProblem, match="is a file, not a folder"):
        fileerrors.is_dir(tmp_path / "real", what="VEX folder")
    assert fileerrors.is_dir(tmp_path) is True and fileerrors.is_dir(tmp_path / "absent") is False


@pytest.mark.parametrize("make", ["folder", "device"])
def test_readers_say_folder_or_device_not_missing(tmp_path, make):
    """Each of these said "does not exist" (or read a device as an empty file)."""
    from dlbase.core.errors import ExitCode
    from dlbase.define import lock
    from dlbase.trust import keys, policyfile

    target = tmp_path / "thing"
    if make == "folder":
        target.mkdir()
    else:
        target = Path("/dev/null")
    words = "a folder" if make == "folder" else "a character device"
    for call in (lambda: policyfile.load(target), lambda: lock.read_lock(target),
                 lambda: keys.load_public(str(target))):
        with pytest.raises(DlbaseError) as info:
            call()
        assert words in info.value.message and "does not exist" not in info.value.message, info.value.message
        assert info.value.exit_code == ExitCode.INVALID_INPUT


def test_a_refused_connection_is_said_in_words():
    """Was "registry 127.0.0.1:1 cannot be reached (ConnectionError)" and, from the index
    readers, urllib3's repr chain with an object address in it."""
    import requests

    from dlbase.core import networds

    with pytest.raises(requests.RequestException) as info:
        requests.get("http://127.0.0.1:1/", timeout=5)
    said = networds.why(info.value)
    assert said == "the connection was refused (nothing listens there)", said


def test_registry_unreachable_names_no_exception_class():
    from dlbase.core.errors import Unreachable
    from dlbase.registry.client import RegistryClient

    with pytest.raises(Unreachable) as info:
        RegistryClient("127.0.0.1:1").manifest("x/y", "latest")
    assert "refused" in info.value.message and "ConnectionError" not in info.value.message, info.value.message


# --------------------------------------------------------------------------- hints that point at nothing
PACKAGE = ROOT / "tools" / "dlbase"


def _hint_texts() -> list[tuple[str, str]]:
    """(file:line, the literal text) of every hint= argument and *_HINT constant in the package."""
    import ast

    def literal(node) -> str:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            return "".join(literal(v) for v in node.values)
        if isinstance(node, ast.BinOp):
            return literal(node.left) + literal(node.right)
        if isinstance(node, ast.IfExp):
            return literal(node.body) + " | " + literal(node.orelse)
        if isinstance(node, (ast.Tuple, ast.Dict)):
            return " | ".join(literal(v) for v in (node.elts if isinstance(node, ast.Tuple) else node.values))
        return ""

    found = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "hint":
                found.append((f"{path.relative_to(ROOT)}:{node.value.lineno}", literal(node.value)))
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id.endswith("_HINT") for t in targets) and node.value:
                    found.append((f"{path.relative_to(ROOT)}:{node.lineno}", literal(node.value)))
    return found


def test_no_hint_points_at_output_above():
    """"read the rows above", "see the listing above", "the lines above say which packages
    moved": under --json nothing is printed above, and some of those lines were never
    printed at all. A hint names the file, the field or the details it means."""
    texts = _hint_texts()
    assert len(texts) > 100  # the walk finds the hints
    bad = [f"{where}: {text}" for where, text in texts if re.search(r"\babove\b", text)]
    assert not bad, "\n".join(bad)


def test_a_failed_verify_names_the_files_to_read():
    from types import SimpleNamespace

    from dlbase.cli.commands.verify import failed_hint

    report = SimpleNamespace(report_file="/r/verify-abc.json", junit_file="/r/verify-abc.xml")
    hint = failed_hint(report, require_gpu=True)
    assert "/r/verify-abc.json" in hint and "/r/verify-abc.xml" in hint and "GPU host" in hint
