"""Hostile-input tries (issue 11's, and later rounds'), run against two versions of dlbase: the table in docs/failures.md.

    python tests/support/bad_input_tries.py BEFORE_TOOLS_DIR AFTER_TOOLS_DIR [NAME_PART]

(NAME_PART: only the tries whose name contains it.)

Each try copies the project (this checkout's data), breaks one thing, runs one `dlbase`
command as a subprocess with PYTHONPATH at the given tools folder, and records: exit code,
a traceback shown or not, whether stdout held exactly one JSON document (under --json),
whether a failing run changed files or left temporary files. Nothing here touches the
Docker daemon (DOCKER_HOST points at a closed port where a verb would need it).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = "torch2.6-cu124-runtime-debian12"
LOCK = f"images/{DEFAULT}/requirements.lock"
NO_DAEMON = {"DOCKER_HOST": "tcp://127.0.0.1:1"}
SUBJECT = "127.0.0.1:1/x/y@sha256:" + "a" * 64  # a registry nothing listens on


def _replace(rel: str, old: str, new: str) -> Callable[[Path], None]:
    def fn(root: Path) -> None:
        p = root / rel
        p.write_text(p.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    return fn


def _cut_lock(root: Path) -> None:
    data = (root / LOCK).read_bytes()
    (root / LOCK).write_bytes(data[: data.rfind(b"\\\n", 0, 40000) + 2])


def _drop_torch(root: Path) -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    from dlbase.define import lock as lock_mod

    text = (root / LOCK).read_text(encoding="utf-8")
    out, skip = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("torch=="):
            skip = True
            continue
        if skip and line.startswith(" "):
            continue
        skip = False
        out.append(line)
    new = "".join(out)
    if hasattr(lock_mod, "content_hash"):
        old_body, new_body = lock_mod._strip_header(text), lock_mod._strip_header(new)
        new = new.replace(lock_mod.content_hash(old_body), lock_mod.content_hash(new_body))
    (root / LOCK).write_text(new, encoding="utf-8")


def _folder(rel: str) -> Callable[[Path], None]:
    def fn(root: Path) -> None:
        (root / rel).unlink()
        (root / rel).mkdir()
        (root / rel / "keep").write_text("x")
    return fn


def _bytes(rel: str, data: bytes) -> Callable[[Path], None]:
    def fn(root: Path) -> None:
        (root / rel).write_bytes(data)
    return fn


def _immutable_after_apt_change(root: Path) -> None:
    _replace("images/matrix.yaml", "apt: [build-essential, python3-dev]",
             "apt: [build-essential, python3-dev, git]")(root)
    subprocess.run(["chattr", "+i", str(root / "images/torch2.6-cu118-devel-ubuntu22.04/Dockerfile")], check=True)


def _stale(root: Path) -> None:
    _replace("images/matrix.yaml", 'numpy: "2.2.6"', 'numpy: "2.2.5"')(root)


def _nothing(root: Path) -> None:
    pass


RANDOM = bytes((i * 73 + 41) % 256 for i in range(4096))  # deterministic non-UTF-8 bytes

TRIES: list[tuple[str, Callable[[Path], None], list[str], dict[str, str]]] = [
    ("lock cut short on a dangling backslash (repro 1)", _cut_lock, ["lock", "--check"], {}),
    ("lock without torch, header consistent", _drop_torch, ["lock", "--check", DEFAULT], {}),
    ("lock: one hash edited by hand", _replace(LOCK, "--hash=sha256:a", "--hash=sha256:b"),
     ["lock", "--check", DEFAULT], {}),
    ("lock not UTF-8", _bytes(LOCK, b"\xff\xfe" + RANDOM), ["lock", "--check", DEFAULT], {}),
    ("immutable Dockerfile, apt list changed (repro 2)", _immutable_after_apt_change, ["render"], {}),
    ("a rendered output is a folder", _folder("ci/github-actions.yml"), ["render"], {}),
    ("sizes.json not JSON", _bytes("images/sizes.json", b"{not json"), ["render"], {}),
    ("push --registry 127.0.0.1:99999 --json (repro 3)", _nothing,
     ["push", DEFAULT, "--registry", "127.0.0.1:99999", "--force", "--json"], {}),  # the real daemon, as reported
    ("push --registry http://127.0.0.1:5000", _nothing, ["push", DEFAULT, "--registry", "http://127.0.0.1:5000"],
     NO_DAEMON),
    ("lock --check --json on a stale lock (repro 4)", _stale, ["lock", "--check", "--json"], {}),
    ("matrix is random bytes, check --json (repro 5)", _bytes("images/matrix.yaml", RANDOM), ["check", "--json"], {}),
    ("compat.yaml is a folder", _folder("images/compat.yaml"), ["check"], {}),
    ("compat: python versions as floats", _replace("images/compat.yaml", 'python: ["3.9", "3.10", "3.11", "3.12", "3.13"]',
                                                   "python: [3.9, 3.10]"), ["check"], {}),
    ("compat: torchvision as a list", _replace("images/compat.yaml", 'torchvision: "0.21.0"', "torchvision: [0.21]"),
     ["check"], {}),
    ("compat: index URL without scheme", _replace("images/compat.yaml", "cu118: https://download.pytorch.org/whl/cu118",
                                                  "cu118: download.pytorch.org/whl/cu118"), ["check"], {}),
    ("matrix: repository DLBase/PyTorch", _replace("images/matrix.yaml", "repository: dlbase/pytorch",
                                                   "repository: DLBase/PyTorch"), ["check"], {}),
    ("build --repository Foo/Bar", _nothing, ["build", DEFAULT, "--repository", "Foo/Bar"], NO_DAEMON),
    ("variant named cu124 on line cu126", _replace("images/matrix.yaml",
                                                   "  - name: torch2.6-cu124-runtime-ubuntu22.04\n    torch: \"2.6.0\"\n    line: cu124",
                                                   "  - name: torch2.6-cu124-runtime-ubuntu22.04\n    torch: \"2.6.0\"\n    line: cu126"),
     ["check"], {}),
    ("pin of a base that does not exist", _nothing, ["pin", "cuda99-base", "--json"], {}),
    ("DOCKER_HOST=tcp://127.0.0.1:99999", _nothing, ["report", "x"], {"DOCKER_HOST": "tcp://127.0.0.1:99999"}),
    ("DOCKER_HOST=garbage:// --json", _nothing, ["diff", "a", "b", "--json"], {"DOCKER_HOST": "garbage://"}),
    ("incompatible stack --json", _nothing, ["check", "--torch", "2.6.0", "--torchvision", "0.17.0", "--json"], {}),
    ("unknown option --json", _nothing, ["check", "--nope", "--json"], {}),
    ("named variant, index unreachable, --json", _nothing,
     ["lock", "--check", "--json", "torch2.6-cu118-runtime-ubuntu22.04"], {}),
    ("image argument with upper case (real daemon)", _nothing, ["report", "Foo/Bar:x"], {}),
    ("empty image argument (real daemon)", _nothing, ["diff", "dlbase/debian:12-minbase", ""], {}),
    ("--shm-size lots (real daemon)", _nothing, ["verify", DEFAULT, "--shm-size", "lots"], {}),
    (".dlbase is a file", _bytes(".dlbase", b"x"), ["build", DEFAULT], NO_DAEMON),
    ("--mirror ftp:/x", _nothing, ["base", "bootstrap", "--mirror", "ftp:/x"], NO_DAEMON),
    ("render --json", _nothing, ["render", "--json"], {}),
    # round 3 (messages and codes)
    ("matrix: repository left empty", _replace("images/matrix.yaml", "repository: dlbase/pytorch", "repository:"),
     ["check", "--json"], {}),
    ("a lock is a folder", _folder(LOCK), ["lock", "--check", DEFAULT], {}),
    ("trust --policy is a folder", _nothing, ["trust", SUBJECT, "--policy", "images", "--json"], {}),
    ("trust --key /dev/null", _nothing, ["trust", SUBJECT, "--key", "/dev/null", "--json"], {}),
    ("scan --vex is a file", _nothing, ["scan", "--from-lock", "--db", str(ROOT / "tests/unit/data/osv"), "--vex",
                                        "README.md"], {}),
    ("compat add --index ftp://", _nothing, ["compat", "add", "torch==2.6.0", "--index", "ftp://x.example/simple",
                                             "--json"], {}),
    ("compat add --index plain http off loopback", _nothing,
     ["compat", "add", "torch==2.6.0", "--index", "http://pypi.example.org/simple", "--json"], {}),
    ("push --host-label without --sign", _nothing,
     ["push", DEFAULT, "--registry", "127.0.0.1:5000", "--host-label", "ci-1", "--json"], NO_DAEMON),
    ("scan --base-url without --update", _nothing, ["scan", "--from-lock", "--base-url", "https://x.example"], {}),
]


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def run_try(tools: Path, setup: Callable[[Path], None], args: list[str], env: dict[str, str]) -> str:
    with tempfile.TemporaryDirectory(prefix="dlbase-try-") as tmp:
        root = Path(tmp) / "repo"
        root.mkdir()
        for rel in ("images", "templates", "ci", "docs"):
            shutil.copytree(ROOT / rel, root / rel)
        for rel in ("README.md", ".hadolint.yaml"):
            shutil.copy2(ROOT / rel, root / rel)
        try:
            setup(root)
            before = _digest(root)
            proc = subprocess.run([sys.executable, "-m", "dlbase", *args], cwd=root, capture_output=True, text=True,
                                  timeout=120, env={**os.environ, "PYTHONPATH": str(tools), "DLBASE_ROOT": str(root),
                                                    **env})
            notes = [f"exit {proc.returncode}"]
            if "Traceback" in proc.stderr:
                notes.append("traceback")
            elif proc.returncode and "what to do:" in proc.stderr:
                notes.append("error + hint")
            if "--json" in args:
                try:
                    doc = json.loads(proc.stdout)
                    notes.append("1 JSON" + ("" if "exit_code" in doc else " without exit code"))
                except json.JSONDecodeError:
                    notes.append("no JSON" if not proc.stdout.strip() else "not one JSON document")
            elif proc.returncode == 0 and args[:2] == ["lock", "--check"]:
                notes.append('"current"')
            if proc.returncode and _digest(root) != before:
                notes.append("files changed")
            if list(root.rglob(".*.tmp")):
                notes.append("temp files left")
            return ", ".join(notes)
        finally:
            subprocess.run(["chattr", "-R", "-i", str(root)], capture_output=True)


def main() -> None:
    before, after = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    only = sys.argv[3] if len(sys.argv) > 3 else ""
    print("| try | before | after |\n|---|---|---|")
    for name, setup, args, env in TRIES:
        if only not in name:
            continue
        cmd = "dlbase " + " ".join(args)
        print(f"| {name}: `{cmd}` | {run_try(before, setup, args, env)} | {run_try(after, setup, args, env)} |")


if __name__ == "__main__":
    main()
