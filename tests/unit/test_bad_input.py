"""Every bad input answered: issue 11's five repros and the classes of failure behind them.

Each test runs the real CLI (dlbase.cli.app, in-process) against a throw-away copy of the
project and asserts the documented exit code, a one-line `error:` plus `what to do:`, no
traceback, exactly one JSON document under --json, and no file changed when the verb fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlbase.core import fileset
from dlbase.define import lock as lock_mod
from dlbase.core.errors import ExitCode, FileProblem

DEFAULT = "torch2.6-cu124-runtime-debian12"
DEVEL = "torch2.6-cu124-devel-ubuntu22.04"


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under root (what 'nothing changed' is checked against)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def assert_clean_failure(res, code: int, *, as_json: bool = False) -> dict | None:
    assert res.code == code, res.output
    assert "Traceback" not in res.output and "internal error" not in res.output, res.output
    assert "error:" in res.err and "what to do:" in res.err, res.err
    if as_json:
        doc = json.loads(res.out)  # exactly one document: json.loads rejects a second one
        assert doc["ok"] is False and doc["exit_code"] == code
        assert doc["message"] and doc["hint"]
        return doc
    return None


# ------------------------------------------------------------------ repro 1: lock cut short


@pytest.mark.parametrize("at_line_end", [True, False])
def test_repro1_lock_cut_in_half_is_not_current(cli, project_copy, at_line_end):
    lock = project_copy / "images" / DEFAULT / "requirements.lock"
    data = lock.read_bytes()
    # The cut (head -c 40000) ended on a dangling backslash; cut there, and mid-line.
    cut = data.rfind(b"\\\n", 0, 40000) + 2 if at_line_end else 40000
    lock.write_bytes(data[:cut])
    res = cli("lock", "--check", DEFAULT, "--json")
    doc = assert_clean_failure(res, int(ExitCode.DRIFT), as_json=True)
    assert doc["variants"][0]["status"] == "stale"  # was "current", exit 0
    assert DEFAULT in doc["message"] and "damaged" in doc["message"]
    if at_line_end:
        assert "cut short" in doc["message"]


def _rewrite_body(lock: Path, body: str) -> None:
    """Replace the body and record its true content hash: a lock that is consistent but incomplete."""
    text = lock.read_text(encoding="utf-8")
    old_body = lock_mod._strip_header(text)
    head = text[: len(text) - len(old_body)]
    old_hash = lock_mod.content_hash(old_body)
    lock.write_text(head.replace(old_hash, lock_mod.content_hash(body)) + body, encoding="utf-8")


def _drop_package(body: str, name: str) -> str:
    out, skip = [], False
    for line in body.splitlines(keepends=True):
        if line.startswith(f"{name}=="):
            skip = True
            continue
        if skip and line.startswith((" ", "\t")):
            continue
        skip = False
        out.append(line)
    return "".join(out)


def test_lock_without_torch_but_a_matching_header_fails_the_check(cli, project_copy):
    lock = project_copy / "images" / DEFAULT / "requirements.lock"
    body = lock_mod._strip_header(lock.read_text(encoding="utf-8"))
    _rewrite_body(lock, _drop_package(body, "torch"))
    res = cli("lock", "--check", DEFAULT)
    assert_clean_failure(res, int(ExitCode.DRIFT))
    assert "torch is not pinned" in res.err


def test_lock_edited_by_hand_fails_the_check(cli, project_copy, edit):
    lock = project_copy / "images" / DEFAULT / "requirements.lock"
    text = lock.read_text(encoding="utf-8")
    first_hash = text.split("--hash=sha256:")[1][:64]
    edit(lock, first_hash, "0" * 64)
    res = cli("lock", "--check", DEFAULT, "--json")
    doc = assert_clean_failure(res, int(ExitCode.DRIFT), as_json=True)
    assert "does not hold what its header records" in doc["message"]


def test_lock_without_content_hash_asks_for_a_relock(cli, project_copy):
    lock = project_copy / "images" / DEFAULT / "requirements.lock"
    lines = [ln for ln in lock.read_text(encoding="utf-8").splitlines(keepends=True)
             if not ln.startswith("# dlbase-lock-content:")]
    lock.write_text("".join(lines), encoding="utf-8")
    res = cli("lock", "--check", DEFAULT)
    assert_clean_failure(res, int(ExitCode.DRIFT))
    assert "no content hash" in res.err


def test_committed_locks_pass_the_full_check(cli):
    res = cli("lock", "--check", "--json")
    doc = json.loads(res.out)
    current = [r for r in doc["variants"] if r["status"] == "current"]
    assert len(current) >= 4 and res.code == 0, res.output


def test_a_named_variant_whose_index_cannot_be_reached_exits_5(cli, project_copy, edit):
    edit(project_copy / "images" / "compat.yaml", "cu118: https://download.pytorch.org/whl/cu118",
         "cu118: http://127.0.0.1:9/whl/cu118")
    res = cli("lock", "--check", "--json", "torch2.6-cu118-runtime-ubuntu22.04")
    doc = assert_clean_failure(res, int(ExitCode.UNREACHABLE), as_json=True)
    assert doc["variants"][0]["status"] == "unreachable"


# ------------------------------------------------------------------ repro 2: render all or none


@pytest.fixture
def immutable(tmp_path):
    """chattr +i on a file for the test, always removed afterwards."""
    marked: list[Path] = []
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")

    def _mark(path: Path) -> None:
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not permitted here (needs root on ext4/xfs)")
        marked.append(path)

    yield _mark
    for path in marked:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)


def test_repro2_render_with_an_immutable_dockerfile_changes_nothing(cli, project_copy, edit, immutable):
    # The devel variants come after the runtime ones in the matrix; the last Dockerfile that
    # changes is made immutable, so earlier ones would already be rewritten without staging.
    edit(project_copy / "images" / "matrix.yaml", "apt: [build-essential, python3-dev]",
         "apt: [build-essential, python3-dev, git]")
    target = project_copy / "images" / "torch2.6-cu118-devel-ubuntu22.04" / "Dockerfile"
    before = tree_digest(project_copy)
    immutable(target)
    res = cli("render")
    assert_clean_failure(res, int(ExitCode.INVALID_INPUT))
    assert "torch2.6-cu118-devel-ubuntu22.04/Dockerfile" in res.err
    assert tree_digest(project_copy) == before  # the other devel Dockerfile was put back
    assert not list(project_copy.rglob(".*.tmp")) and not list(project_copy.rglob(".*.restore"))


def test_render_where_an_output_is_a_folder_changes_nothing(cli, project_copy, edit):
    edit(project_copy / "images" / "matrix.yaml", "apt: [build-essential, python3-dev]",
         "apt: [build-essential, python3-dev, git]")
    workflow = project_copy / "ci" / "github-actions.yml"
    workflow.unlink()
    workflow.mkdir()
    (workflow / "keep").write_text("x")
    before = tree_digest(project_copy)
    res = cli("render", "--json")
    doc = assert_clean_failure(res, int(ExitCode.INVALID_INPUT), as_json=True)
    assert "github-actions.yml" in doc["message"]
    assert tree_digest(project_copy) == before
    assert not list(project_copy.rglob(".*.tmp"))


def test_fileset_interrupted_midway_puts_everything_back(tmp_path, monkeypatch):
    files = [tmp_path / f"f{i}" for i in range(4)]
    for f in files:
        f.write_text(f"old {f.name}")
    calls = {"n": 0}
    real_replace = os.replace

    def flaky_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_replace(src, dst)

    monkeypatch.setattr(fileset.os, "replace", flaky_replace)
    with pytest.raises(KeyboardInterrupt):
        fileset.commit([fileset.Change(f, f"new {f.name}") for f in files]
                       + [fileset.Change(tmp_path / "sub" / "new", "x")])
    monkeypatch.setattr(fileset.os, "replace", real_replace)
    assert [f.read_text() for f in files] == [f"old {f.name}" for f in files]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f0", "f1", "f2", "f3"]  # no temp, no new folder


def test_fileset_failure_names_the_file(tmp_path):
    blocker = tmp_path / "notadir"
    blocker.write_text("x")
    with pytest.raises(FileProblem, match="notadir"):
        fileset.commit([fileset.Change(tmp_path / "a", "a"), fileset.Change(blocker / "b", "b")])
    assert not (tmp_path / "a").exists()


# ------------------------------------------------------------------ repro 3: bad registry address


def test_repro3_push_to_an_impossible_port_is_exit_2_with_one_json(cli, project_copy):
    res = cli("push", DEFAULT, "--registry", "127.0.0.1:99999", "--force", "--json")
    doc = assert_clean_failure(res, int(ExitCode.INVALID_INPUT), as_json=True)
    assert "99999" in doc["message"]


@pytest.mark.parametrize("registry, says", [
    ("http://127.0.0.1:5000", "is a URL"),
    ("https://registry.example.com/v2/", "is a URL"),
    ("127.0.0.1:5000/team", "has a path"),
    ("bad_host!:5000", "not a host name"),
    ("", "empty"),
])
def test_registry_must_be_host_and_port(cli, project_copy, registry, says):
    res = cli("push", DEFAULT, "--registry", registry)
    assert_clean_failure(res, int(ExitCode.INVALID_INPUT))
    assert says in res.err


@pytest.mark.parametrize("docker_host", ["tcp://127.0.0.1:99999", "gopher://x", "tcp://", "unix://"])
@pytest.mark.parametrize("verb", [["report", "x"], ["diff", "a", "b"], ["build", DEFAULT], ["verify", DEFAULT],
                                  ["base", "bootstrap"], ["doctor"]])
def test_malformed_docker_host_is_exit_2_before_the_engine(cli, project_copy, monkeypatch, docker_host, verb):
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    res = cli(*verb, "--json")
    doc = assert_clean_failure(res, int(ExitCode.INVALID_INPUT), as_json=True)
    assert "DOCKER_HOST" in doc["message"]


# ------------------------------------------------------------------ repro 4: one JSON document


def test_repro4_stale_lock_check_json_is_one_document(cli, project_copy, edit):
    edit(project_copy / "images" / "matrix.yaml", 'numpy: "2.2.6"', 'numpy: "2.2.5"')
    res = cli("lock", "--check", "--json")
    doc = assert_clean_failure(res, int(ExitCode.DRIFT), as_json=True)
    assert any(r["status"] == "stale" for r in doc["variants"])


@pytest.mark.parametrize("args", [["check", "--torch", "2.6.0", "--torchvision", "0.17.0"],
                                  ["lint", "nonexistent/Dockerfile"],
                                  ["check", "--variant", "nope"],
                                  ["render", "--check"]])
def test_failures_under_json_are_one_document(cli, project_copy, args, edit):
    if args == ["render", "--check"]:
        edit(project_copy / "images" / DEFAULT / "Dockerfile", "FROM", "FROM  ")
    res = cli(*args, "--json")
    assert res.code in (2, 3, 4), res.output
    doc = json.loads(res.out)
    assert doc["exit_code"] == res.code and doc["ok"] is False and doc["message"]


def test_success_under_json_carries_the_exit_code(cli):
    res = cli("check", "--json")
    doc = json.loads(res.out)
    assert res.code == 0 and doc["ok"] is True and doc["exit_code"] == 0 and "hint" in doc


def test_usage_error_under_json_is_one_document(cli):
    res = cli("check", "--no-such-option", "--json")
    doc = json.loads(res.out)
    assert res.code == 2 and doc["exit_code"] == 2 and doc["error"] == "NoSuchOption"


# ------------------------------------------------------------------ repro 5: files that are not text


def test_repro5_random_bytes_as_matrix(cli, project_copy):
    (project_copy / "images" / "matrix.yaml").write_bytes(os.urandom(4096) + b"\xff\xfe")
    res = cli("check", "--json")
    doc = assert_clean_failure(res, int(ExitCode.INVALID_INPUT), as_json=True)
    assert "matrix.yaml" in doc["message"] and "UTF-8" in doc["message"]


@pytest.mark.parametrize("which", ["matrix.yaml", "compat.yaml"])
def test_input_file_that_is_a_folder(cli, project_copy, which):
    path = project_copy / "images" / which
    path.unlink()
    path.mkdir()
    res = cli("check")
    if which == "matrix.yaml":  # no matrix file at all: the project root is not found
        assert res.code in (2, 14) and "Traceback" not in res.output
        return
    assert_clean_failure(res, int(ExitCode.INVALID_INPUT))
    assert "is a folder" in res.err


def test_lock_that_is_not_utf8(cli, project_copy):
    lock = project_copy / "images" / DEFAULT / "requirements.lock"
    lock.write_bytes(lock.read_bytes()[:300] + b"\xc3\x28" + lock.read_bytes()[300:])
    res = cli("lock", "--check", DEFAULT)
    assert_clean_failure(res, int(ExitCode.INVALID_INPUT))  # an unreadable file, like any other
    assert "UTF-8" in res.err and "requirements.lock:" in res.err


def test_sizes_json_that_is_not_json(cli, project_copy):
    (project_copy / "images" / "sizes.json").write_text("{not json")
    before = tree_digest(project_copy)
    res = cli("render")
    assert_clean_failure(res, int(ExitCode.INVALID_INPUT))
    assert "sizes.json:1" in res.err and tree_digest(project_copy) == before


# ------------------------------------------------------------------ values that cannot work


@pytest.mark.parametrize("old, new, says", [
    ('python: ["3.9", "3.10", "3.11", "3.12", "3.13"]', "python: [3.9, 3.10]", "must be a quoted string"),
    ('torchvision: "0.21.0"', "torchvision: [0.21]", "must be a string"),
    ('"12.4": {min_driver: "550.54.14"}', '"12.4": {min_driver: 550.54}', "must be a quoted string"),
    ("cu118: https://download.pytorch.org/whl/cu118", "cu118: download.pytorch.org/whl/cu118", "http(s) URL"),
    ("cu118: https://download.pytorch.org/whl/cu118", "cu118: https://host:99999/x", "port"),
])
def test_wrong_typed_compat_values(cli, project_copy, edit, old, new, says):
    edit(project_copy / "images" / "compat.yaml", old, new)
    res = cli("check", "--json")
    doc = assert_clean_failure(res, int(ExitCode.INVALID_INPUT), as_json=True)
    assert says in doc["message"] and "compat.yaml:" in doc["message"]


def test_invalid_repository_in_the_matrix(cli, project_copy, edit):
    edit(project_copy / "images" / "matrix.yaml", "repository: dlbase/pytorch", "repository: DLBase/PyTorch")
    res = cli("check")
    assert_clean_failure(res, int(ExitCode.INVALID_INPUT))
    assert "repository" in res.err and "upper-case" in res.err


@pytest.mark.parametrize("repo", ["Foo/bar", "foo//bar", "foo/bar:tag", "-foo", "foo_/bar", "a" * 256])
def test_invalid_repository_option_fails_before_any_build(cli, project_copy, monkeypatch, repo):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")  # would be exit 6 if the build started
    res = cli("build", DEFAULT, "--repository", repo)
    assert_clean_failure(res, int(ExitCode.INVALID_INPUT))
    assert "--repository" in res.err


def test_valid_repositories_are_accepted():
    from dlbase.core import validate

    for repo in ("dlbase/pytorch", "127.0.0.1:5000/team/x", "localhost/a__b", "a-b.c/d---e", "registry.io/x"):
        assert validate.repository(repo) == repo


def test_variant_name_that_contradicts_its_line(cli, project_copy, edit):
    edit(project_copy / "images" / "matrix.yaml", f"  - name: {DEVEL}\n    torch: \"2.6.0\"\n    line: cu124",
         f"  - name: {DEVEL}\n    torch: \"2.6.0\"\n    line: cu126")
    res = cli("check")
    assert_clean_failure(res, int(ExitCode.INVALID_INPUT))
    assert "the name says cu124 but the variant's line is cu126" in res.err


@pytest.mark.parametrize("base, says", [("cuda99-base", "no base named 'cuda99-base'"),
                                        ("debian12", "built on this machine")])
def test_pin_of_a_base_that_cannot_be_pinned(cli, project_copy, base, says):
    before = tree_digest(project_copy)
    res = cli("pin", base, "--json")
    doc = assert_clean_failure(res, int(ExitCode.INVALID_INPUT), as_json=True)
    assert says in doc["message"] and tree_digest(project_copy) == before


# ------------------------------------------------------------------ signals and the safety net


def test_sigterm_is_an_interrupt_with_exit_130(tmp_path):
    script = ("import time\nfrom dlbase.cli import app as cli\n"
              "@cli.app.command('sleepy')\ndef sleepy():\n    print('ready', flush=True); time.sleep(60)\n"
              "cli.main(['sleepy'])\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130 and "interrupted (SIGTERM)" in err and "Traceback" not in err
    assert time.monotonic() - started < 10


def test_unexpected_exception_is_one_line_and_debug_shows_it(tmp_path):
    script = ("from dlbase.cli import app as cli\n"
              "@cli.app.command('boom')\ndef boom():\n    raise RuntimeError('kaputt')\n"
              "cli.main(['boom', *__import__('sys').argv[1:]])\n")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "internal error: RuntimeError: kaputt" in res.stderr
    assert "Traceback" not in res.stderr and "DLBASE_DEBUG=1" in res.stderr
    dbg = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "DLBASE_DEBUG": "1"})
    assert "Traceback" in dbg.stderr and dbg.returncode == 1


def test_test_session_finaliser_runs_on_sigterm(tmp_path):
    """The helper tests/integration/conftest.py installs: a killed pytest still tears down."""
    marker = tmp_path / "finalised"
    (tmp_path / "conftest.py").write_text(
        "import pytest\nfrom tests.support.signals import install_sigterm_as_interrupt\n"
        "def pytest_configure(config):\n    install_sigterm_as_interrupt()\n"
        "@pytest.fixture(scope='session')\ndef res():\n    yield 1\n"
        f"    open({str(marker)!r}, 'w').write('done')\n")
    (tmp_path / "test_wait.py").write_text(
        f"import time\ndef test_wait(res):\n    open({str(tmp_path / 'ready')!r}, 'w').write('1')\n    time.sleep(60)\n")
    repo = Path(__file__).resolve().parents[2]
    path = os.pathsep.join([str(repo), str(repo / "tools")])  # tests.support and this checkout's dlbase
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": path},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "ready").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert marker.read_text() == "done", out


@pytest.mark.parametrize("args, says", [
    (["report", "::bad::"], "is not an image reference"),
    (["report", "Foo/Bar:x"], "upper-case"),
    (["diff", "dlbase/debian:12-minbase", ""], "empty image name"),
    (["verify", "x@sha256:zz"], "malformed digest"),
    (["push", "@@@", "--registry", "127.0.0.1:5000"], "malformed digest"),
    (["verify", DEFAULT, "--shm-size", "lots"], "is not a size"),
])
def test_image_arguments_are_checked_before_the_daemon(cli, project_copy, monkeypatch, args, says):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")  # exit 6 if the daemon were asked first
    res = cli(*args, "--json")
    doc = assert_clean_failure(res, int(ExitCode.INVALID_INPUT), as_json=True)
    assert says in doc["message"]


@pytest.mark.parametrize("ref", [DEFAULT, "dlbase/pytorch:2.6-cu124-runtime-debian12", "sha256:7cc4ede9830d",
                                 "7cc4ede9830d", "127.0.0.1:5000/dlbase/pytorch@sha256:" + "a" * 64,
                                 "localhost:5000/x:y"])
def test_valid_image_arguments_reach_the_daemon(cli, project_copy, monkeypatch, ref):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    res = cli("report", ref)
    assert res.code == int(ExitCode.DAEMON), res.output


@pytest.mark.parametrize("verb", [["build", DEFAULT], ["verify", DEFAULT], ["push", DEFAULT, "--registry", "127.0.0.1:5000"],
                                  ["rebuild-check", DEFAULT], ["bench", "build", DEFAULT]])
def test_state_folder_that_is_a_file_stops_the_verb_before_work(cli, project_copy, monkeypatch, verb):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")  # exit 6 if work started
    (project_copy / ".dlbase").write_text("not a folder")
    res = cli(*verb, "--json")
    doc = assert_clean_failure(res, int(ExitCode.INVALID_INPUT), as_json=True)
    assert ".dlbase" in doc["message"] and "is a file" in doc["message"]


# ------------------------------------------------- found by the property test (hypothesis)


def test_base_os_that_is_not_a_name_is_a_matrix_error(cli, project_copy, edit):
    """`os: []` once reached the tag builder and ended in 'internal error' (render, exit 1)."""
    edit(project_copy / "images" / "matrix.yaml", "os: debian12", "os: []")
    before = tree_digest(project_copy)
    res = cli("render", "--json")
    doc = assert_clean_failure(res, int(ExitCode.INVALID_INPUT), as_json=True)
    assert "os" in doc["message"] and "debian12" in doc["message"]
    assert tree_digest(project_copy) == before


def test_compat_without_a_pypi_index_is_a_compat_error(cli, project_copy, edit):
    """A compat table without `indexes: pypi` once ended in 'internal error: KeyError: pypi'."""
    edit(project_copy / "images" / "compat.yaml", "  pypi:", "  pypi_gone:")
    res = cli("render", "--json")
    doc = assert_clean_failure(res, int(ExitCode.INVALID_INPUT), as_json=True)
    assert "pypi" in doc["message"] and "compat.yaml" in doc["message"]


def test_an_unreadable_folder_on_the_way_up_is_not_a_traceback(tmp_path, monkeypatch):
    """Project discovery from below a folder the user cannot read (root bypasses modes, so
    the permission error is simulated at the one call that raises it)."""
    from dlbase.core import root as root_mod

    real = Path.is_file

    def is_file(self: Path) -> bool:
        if self.parent.parent == tmp_path / "locked":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.delenv("DLBASE_ROOT", raising=False)
    monkeypatch.setattr(Path, "is_file", is_file)
    (tmp_path / "locked" / "inner").mkdir(parents=True)
    assert root_mod.search_root(tmp_path / "locked" / "inner") is None


# ------------------------------------------------------------------ dlbase run: its own options only


@pytest.mark.parametrize("args, says", [
    (["--user", "1:2:3", "img", "--", "true"], "more than one ':'"),
    (["--user", "", "img"], "is not a number or a user/group name"),
    (["--user", "-1", "img"], "is not a number or a user/group name"),
    (["--user", "a b", "img"], "is not a number or a user/group name"),
    (["--user", "4294967295", "img"], "names an ID above"),
    (["--workspace", "/tmp", "--no-workspace", "img"], "--no-workspace conflict"),
    (["img", "--gpus", "none", "--", "true"], "--gpus comes after IMAGE"),
    (["img", "--shm-size=1g"], "--shm-size comes after IMAGE"),
    (["img", "-eX=1", "true"], "-e comes after IMAGE"),
    (["-p", "0", "img"], "is not a port number"),
    (["-p", "65536", "img"], "is not a port number"),
    (["-p", "localhost:8888", "img"], "is not an IP address"),
    (["-e", "1BAD=x", "img"], "is not an environment variable name"),
])
def test_run_bad_options_exit_2_before_the_daemon(cli, monkeypatch, tmp_path, args, says):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")  # exit 6 if the daemon were asked first
    monkeypatch.chdir(tmp_path)
    res = cli("run", "--json", *args)
    doc = assert_clean_failure(res, int(ExitCode.INVALID_INPUT), as_json=True)
    assert says in doc["message"]


def test_run_option_after_image_hint_says_where_it_goes(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    res = cli("run", "img", "--gpus", "none", "--", "true")
    assert res.code == 2 and "before IMAGE" in res.err and "dlbase run IMAGE -- --gpus none -- true" in res.err


@pytest.mark.parametrize("args", [["img", "--", "--gpus", "none"], ["img", "python", "-c", "1"], ["img", "-c", "1"]])
def test_run_words_after_image_or_dashdash_are_the_command(cli, monkeypatch, args):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    assert cli("run", *args).code == int(ExitCode.DAEMON)  # parsed; it got as far as the daemon


def test_a_containers_json_flag_is_not_dlbases(cli, monkeypatch):
    """`dlbase run IMG -- echo --json`: --json belongs to echo, so no dlbase document."""
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    res = cli("run", "img", "--", "echo", "--json")
    assert res.code == int(ExitCode.DAEMON) and res.out == ""


def test_a_containers_help_flag_does_not_turn_dlbases_json_off(cli, monkeypatch):
    """`dlbase run --json no-such -- ls -h`: -h belongs to ls; dlbase's --json still holds."""
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    res = cli("run", "--json", "no-such", "--", "ls", "-h")
    doc = json.loads(res.out)
    assert doc["exit_code"] == res.code == int(ExitCode.DAEMON)


@pytest.mark.parametrize("args, wanted", [
    (["run", "IMG", "--", "echo", "--json"], False),
    (["run", "IMG", "--json"], False),  # after IMAGE: the container's (and refused as misplaced)
    (["run", "-e", "--json", "IMG"], False),  # the value of -e
    (["run", "--json", "no-such", "--", "ls", "-h"], True),
    (["run", "--gpus", "lots", "--json", "IMG"], True),
    (["check", "--json"], True),
    (["bench", "data", "--json"], True),
    (["key", "generate", "--json"], True),
    (["check", "--help", "--json"], False),
    (["--version"], False),
    (["nosuch", "--json"], True),  # no such verb: still one document
    (["bench", "--json"], True),
    (["nosuch", "--", "--json"], False),
    ([], False),
])
def test_json_mode_follows_dlbases_own_options(args, wanted):
    from dlbase.cli.app import wants_json

    assert wants_json(args) is wanted
