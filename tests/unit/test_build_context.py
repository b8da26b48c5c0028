"""The staged build context (dlbase.build.context): only what the Dockerfile COPYs, with the
times and modes two clones of the project agree on, and nothing left afterwards."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dlbase.build import context
from dlbase.core import errors
from dlbase.define.spec import FILE_EPOCH

DOCKERFILE = """FROM base
COPY images/_build/ /opt/dlbase/
copy --chown=0:0 images/v/ /opt/dlbase/
COPY --from=other /x /y
COPY tests/image/ /opt/dlbase/tests/
COPY images/_build/ /again/
RUN echo COPY not/a/source /x
"""


def project(tmp: Path) -> Path:
    root = tmp / "proj"
    for rel, text in {"images/_build/install_group.py": "print()\n", "images/_build/installer.lock": "uv\n",
                      "images/v/Dockerfile": DOCKERFILE, "images/v/image.json": "{}\n",
                      "images/other/Dockerfile": "FROM x\n", "tests/image/test_a.py": "x = 1\n",
                      "tests/image/sub/b.py": "y = 2\n", "tests/image/__pycache__/a.pyc": "junk",
                      "tests/unit/test_u.py": "", ".dockerignore": "*\n!images/\n!tests/image/\n"}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "images/_build/install_group.py").chmod(0o775)  # a umask-002 checkout
    (root / "tests/image/sub").chmod(0o775)
    return root


def test_copy_sources_are_the_context_paths_in_order_without_repeats():
    assert context.copy_sources(DOCKERFILE) == ["images/_build/", "images/v/", "tests/image/"]


@pytest.mark.parametrize("line", ['COPY ["a", "b/"]', "COPY <<EOF /x"])
def test_forms_that_cannot_be_staged_are_refused(line):
    with pytest.raises(errors.InvalidInput) as info:
        context.copy_sources(f"FROM x\n{line}\n")
    assert "line 2" in info.value.message and info.value.hint


def test_staging_copies_only_the_copy_sources_dated_and_chmodded(tmp_path):
    root = project(tmp_path)
    into = tmp_path / "ctx"
    into.mkdir()
    context.stage(root, "images/v/Dockerfile", into)
    files = sorted(p.relative_to(into).as_posix() for p in into.rglob("*") if p.is_file())
    assert files == [".dockerignore", "images/_build/install_group.py", "images/_build/installer.lock",
                     "images/v/Dockerfile", "images/v/image.json", "tests/image/sub/b.py", "tests/image/test_a.py"]
    for path in [into, *into.rglob("*")]:
        st = path.lstat()
        assert st.st_mtime == FILE_EPOCH, path
        want = 0o755 if path.is_dir() or path.name == "install_group.py" else 0o644
        assert stat.S_IMODE(st.st_mode) == want, path
    assert (into / "tests/image/test_a.py").read_text() == "x = 1\n"


def test_a_source_outside_the_context_is_refused(tmp_path):
    root = project(tmp_path)
    (root / "images/v/Dockerfile").write_text("FROM x\nCOPY ../secret /x/\n")
    with pytest.raises(errors.InvalidInput) as info:
        context.stage(root, "images/v/Dockerfile", tmp_path)
    assert "outside the build context" in info.value.message


def test_the_staged_context_is_gone_afterwards_also_after_a_failure(tmp_path):
    root = project(tmp_path)
    work = tmp_path / "work"
    with context.staged(root, "images/v/Dockerfile", work) as ctx:
        assert (ctx / "images/v/Dockerfile").is_file()
    assert list(work.iterdir()) == []
    with pytest.raises(RuntimeError):
        with context.staged(root, "images/v/Dockerfile", work):
            raise RuntimeError("the build failed")
    assert list(work.iterdir()) == []
    # a killed run's folder (its owner gone) is swept by the next
    dead = work / f"{context.SCRATCH_PREFIX}dead"
    dead.mkdir()
    (dead / "owner").write_text("999999999 1\n")
    with context.staged(root, "images/v/Dockerfile", work):
        assert not dead.exists()
    assert os.listdir(work) == []
