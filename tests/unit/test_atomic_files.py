"""The one home for atomic writes (core.fsutil) and its users: the file set of `dlbase render`
and the signing keys. Modes come from the file replaced or the mode asked for, the process
umask is never changed, a duplicate path is refused before anything is written, and file
errors are told by core.fileerrors."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from dlbase.core import fileerrors, fileset, fsutil
from dlbase.core.errors import FileProblem, InvalidInput
from dlbase.trust import keys


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_file_gets_ordinary_permissions(tmp_path, umask_022):
    fsutil.write_text_atomic(tmp_path / "new.txt", "x")
    assert mode_of(tmp_path / "new.txt") == 0o644


def test_a_replaced_file_keeps_its_mode(tmp_path, umask_022):
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    fsutil.write_text_atomic(script, "#!/bin/sh\necho new\n")
    assert mode_of(script) == 0o755 and script.read_text().endswith("echo new\n")


def test_the_mode_asked_for_wins_over_the_umask_and_the_old_file(tmp_path):
    old = os.umask(0)  # the most permissive umask: 0600 must still be 0600
    try:
        target = tmp_path / "secret"
        target.write_text("old")
        target.chmod(0o644)
        fsutil.write_bytes_atomic(target, b"new", mode=0o600)
    finally:
        os.umask(old)
    assert mode_of(target) == 0o600 and target.read_bytes() == b"new"


def test_no_write_changes_the_process_umask(tmp_path, monkeypatch):
    """os.umask is process-wide: setting it to read it races with other threads."""
    def refuse(_mask):
        raise AssertionError("os.umask was called")

    monkeypatch.setattr(os, "umask", refuse)
    fsutil.write_text_atomic(tmp_path / "a", "a")
    fileset.commit([fileset.Change(tmp_path / "b", "b"), fileset.Change(tmp_path / "a", "a2")])
    keys.write_pair(keys.generate(), b"pw", tmp_path / "keys")
    assert (tmp_path / "b").read_text() == "b" and (tmp_path / "a").read_text() == "a2"


def test_parallel_writes_all_get_ordinary_permissions(tmp_path, umask_022):
    """With the old umask toggle, a file created while another thread had set the umask to 0
    could come out 0666 (or a thread's write 0600)."""
    def work(n: int) -> None:
        for i in range(30):
            fsutil.write_text_atomic(tmp_path / f"t{n}-{i}", "x")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {mode_of(p) for p in tmp_path.iterdir()} == {0o644}


def test_fileset_keeps_an_executables_mode_and_honours_a_mode_asked_for(tmp_path, umask_022):
    script = tmp_path / "entry.sh"
    script.write_text("old\n")
    script.chmod(0o755)
    fileset.commit([fileset.Change(script, "new\n"), fileset.Change(tmp_path / "key", "k", mode=0o600),
                    fileset.Change(tmp_path / "plain", "p")])
    assert mode_of(script) == 0o755 and script.read_text() == "new\n"
    assert mode_of(tmp_path / "key") == 0o600 and mode_of(tmp_path / "plain") == 0o644


def test_fileset_puts_back_the_mode_too_when_it_rolls_back(tmp_path, monkeypatch):
    script = tmp_path / "a.sh"
    script.write_text("old")
    script.chmod(0o750)
    real_replace = os.replace
    calls = {"n": 0}

    def flaky(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:
            raise PermissionError(13, "Permission denied", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(FileProblem) as info:
        fileset.commit([fileset.Change(script, "new", mode=0o644), fileset.Change(tmp_path / "b", "b")])
    monkeypatch.setattr(os, "replace", real_replace)
    assert "put back" in " ".join(info.value.details)
    assert script.read_text() == "old" and mode_of(script) == 0o750
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.sh"]


@pytest.mark.parametrize("second", ["dup", "./dup", "sub/../dup"])
def test_fileset_refuses_a_duplicate_path_before_writing_anything(tmp_path, monkeypatch, second):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="changed twice"):
        fileset.commit([fileset.Change(Path("first"), "1"), fileset.Change(Path("dup"), "a"),
                        fileset.Change(Path(second), "b")])
    assert list(tmp_path.iterdir()) == []  # no temp file, no target, no folder


def test_a_write_where_a_file_blocks_the_folder_names_it(tmp_path):
    (tmp_path / "blocker").write_text("x")
    with pytest.raises(FileProblem) as info:
        fsutil.write_text_atomic(tmp_path / "blocker" / "out.json", "{}")
    assert "blocker" in info.value.message and "it File exists" not in info.value.message
    assert info.value.hint


def test_keys_are_written_once_with_0600_and_never_replaced(tmp_path):
    old = os.umask(0)
    try:
        priv, pub = keys.write_pair(keys.generate(), b"pw", tmp_path)
    finally:
        os.umask(old)
    assert mode_of(priv) == 0o600 and mode_of(pub) == 0o644
    before = priv.read_bytes()
    with pytest.raises(InvalidInput, match="never overwritten"):
        keys._write_new(priv, b"other", 0o600)
    assert priv.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cosign.key", "cosign.pub"]


def test_writable_dir_probes_for_real(tmp_path):
    """As root every os.access check passes; a file where the folder should be still fails,
    and the probe leaves nothing behind."""
    fileerrors.writable_dir(tmp_path / "not" / "yet")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "state").write_text("a file")
    with pytest.raises(FileProblem, match="is a file, not a folder"):
        fileerrors.writable_dir(tmp_path / "state" / "bench")


def test_file_errors_are_no_longer_part_of_validate():
    from dlbase.core import validate

    for name in ("file_error", "read_text", "writable_dir"):
        assert not hasattr(validate, name), name
