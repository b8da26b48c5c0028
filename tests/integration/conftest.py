"""Shared fixtures for tests that need a real Docker daemon.

The daemon is shared with other people's work (and with the base image others reuse),
so every object a test creates carries this session's own label
``dlbase.test-session=<uuid>``, and the session finaliser removes exactly those -- never
anything else.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dlbase.build import base
from dlbase.core import errors
from dlbase.engine import Engine
from tests.support.signals import install_sigterm_as_interrupt, restore_sigint

SESSION_LABEL_KEY = "dlbase.test-session"
SESSION_ID = str(uuid.uuid4())
SESSION_LABEL = f"{SESSION_LABEL_KEY}={SESSION_ID}"


def pytest_configure(config: pytest.Config) -> None:
    """A run killed with SIGTERM (CI's time limit) still runs the finaliser below, and a
    run started in the background still lets the Ctrl-C tests' SIGINT reach the CLI."""
    install_sigterm_as_interrupt()
    restore_sigint()


def _require_docker() -> bool:
    return os.environ.get("DLBASE_REQUIRE_DOCKER", "") == "1"


@pytest.fixture(scope="session")
def session_labels() -> dict[str, str]:
    """Labels every test object must carry so the finaliser (and only it) removes them."""
    return {SESSION_LABEL_KEY: SESSION_ID}


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """A pinged Engine; skips (or fails under DLBASE_REQUIRE_DOCKER=1) without a daemon.

    On teardown it removes everything labelled with this session's label.
    """
    eng = Engine()
    try:
        eng.ping()
    except errors.DaemonUnavailable as exc:
        reason = f"no Docker daemon reachable at {eng.endpoint} ({exc.message})"
        if _require_docker():
            pytest.fail(f"{reason}; DLBASE_REQUIRE_DOCKER=1 makes this a failure", pytrace=False)
        pytest.skip(reason)
    yield eng
    eng.cleanup(SESSION_LABEL)


@pytest.fixture(scope="session")
def debian_base(engine: Engine) -> base.BaseImage:
    """The shared dlbase/debian:12-minbase image, bootstrapped once if absent.

    It is deliberately *not* labelled with the session label: it is shared with other
    sessions and developers and must survive the finaliser.
    """
    try:
        return base.bootstrap(engine)
    except errors.DlbaseError as exc:
        if _require_docker():
            raise
        pytest.skip(f"cannot make the Debian base image: {exc.message}")


@pytest.fixture(scope="session")
def debian13_base(engine: Engine) -> base.BaseImage:
    """The matrix's Debian 13 bootstrap base (the second line's), bootstrapped once if
    absent; shared like ``debian_base`` and so never session-labelled."""
    from dlbase.define.project import Project

    spec = Project.discover(ROOT).matrix.bases["debian13"]
    try:
        return base.bootstrap(engine, repository=spec.image, tag=spec.tag, suite=spec.suite or base.DEFAULT_SUITE)
    except errors.DlbaseError as exc:
        if _require_docker():
            raise
        pytest.skip(f"cannot make the Debian 13 base image: {exc.message}")


@pytest.fixture
def context_dir(tmp_path: Path, debian_base: base.BaseImage):
    """Write a build context: ``context_dir("RUN ...", "RUN ...")`` -> its directory."""

    def make(*instructions: str, files: dict[str, str] | None = None) -> Path:
        lines = [f"FROM {debian_base.ref}", *instructions]
        (tmp_path / "Dockerfile").write_text("\n".join(lines) + "\n")
        for name, text in (files or {}).items():
            (tmp_path / name).write_text(text)
        return tmp_path

    return make


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def default_image(engine: Engine, debian_base: base.BaseImage, session_labels: dict[str, str]) -> dict:
    """The matrix's default variant, built for real once per session through the CLI
    (`dlbase build --json`), labelled with the session label so the finaliser removes it.

    Takes a few minutes on a cold cache (torch 2.6.0 + CUDA wheels, about 6 GB); the
    wheelhouse in the machine's cache (~/.cache/dlbase) makes later sessions, and other
    clones, download nothing.
    """
    import json
    import subprocess
    import sys

    # DLBASE_KEEP_TEST_IMAGES=1 (developers only) leaves the image and its layer cache in
    # place, so the next session's build is a cache hit instead of minutes of work.
    # Otherwise the image is tagged into a repository of this session's own, so a test run
    # never moves (and then deletes) the user's dlbase/pytorch tags.
    keep = os.environ.get("DLBASE_KEEP_TEST_IMAGES") == "1"
    extra = [] if keep else ["--label", ",".join(f"{k}={v}" for k, v in session_labels.items()),
                             "--repository", f"dlbase-test-{SESSION_ID[:8]}/pytorch"]
    proc = subprocess.run(
        [sys.executable, "-m", "dlbase", "build", "--json", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=3000,
    )
    if proc.returncode != 0:
        pytest.fail(f"building the default image failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}",
                    pytrace=False)
    return json.loads(proc.stdout)


# A repository of the session's own for the small-project build tests: its moving tag
# (the default variant's) sits on an image of ours and must never move.
REPO_TAG_SUFFIX = "2.6-cu124-runtime-debian12"


@pytest.fixture(scope="module")
def test_repo(engine: Engine, debian_base: base.BaseImage, session_labels: dict[str, str],
              tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A repository of this session's own, with its moving tag on an image of ours."""
    repo = f"dlbase-test-{uuid.uuid4().hex[:10]}/pytorch"
    ctx = tmp_path_factory.mktemp("sentinel")
    (ctx / "Dockerfile").write_text(f"FROM {debian_base.ref}\nLABEL dlbase.test-sentinel={repo}\n")
    sentinel = engine.build(ctx, labels={**session_labels, "dlbase.test-sentinel": repo})
    engine.tag(sentinel, repo, REPO_TAG_SUFFIX)
    return {"repo": repo, "moving": f"{repo}:{REPO_TAG_SUFFIX}", "sentinel": sentinel}
