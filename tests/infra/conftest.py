"""Host-side checks of a built image (pytest-testinfra, docker backend).

`dlbase verify` starts a container of the image with `sleep infinity` and runs

    pytest tests/infra -c tests/infra/pytest.ini --hosts=docker://root@CONTAINER

with ``DLBASE_VERIFY_EXPECT`` (or ``--dlbase-expect``) naming a JSON file of what the
image must be: its labels and config as the daemon reports them, the variant's facts,
the compatibility pairs, whether the container got GPUs. The ``host`` fixture (testinfra)
execs as root so that every file can be inspected; ``default_host`` execs as the image's
default user. Each test carries ``@pytest.mark.check("...")``: the name verify's summary
shows; the map test -> check is written to ``DLBASE_VERIFY_CHECKS_OUT``.

Run outside verify (no expectations file), every test skips with the reason.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

EXPECT_ENV = "DLBASE_VERIFY_EXPECT"
CHECKS_ENV = "DLBASE_VERIFY_CHECKS_OUT"
VENV_PYTHON = "/opt/venv/bin/python"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--dlbase-expect", default=os.environ.get(EXPECT_ENV),
                     help=f"JSON file of what the image must be (default ${EXPECT_ENV}; written by dlbase verify)")
    parser.addoption("--dlbase-checks-out", default=os.environ.get(CHECKS_ENV),
                     help="write the test -> check-name map here (JSON)")


def pytest_configure(config: pytest.Config) -> None:
    # Registered here too, so the checks also run under another config (e.g. the repo's pyproject).
    config.addinivalue_line("markers", "check(name): the name of the check in `dlbase verify`'s summary")
    config.addinivalue_line("markers", "gpu: needs a GPU in the container")


@pytest.fixture(autouse=True)
def _only_under_verify(expect: dict[str, Any]) -> None:
    """Without an expectations file every check skips: testinfra would otherwise point the
    ``host`` fixture at this machine and inspect it instead of an image."""


# The order of the summary: what the image claims, how it runs, what it must not carry, extras.
FILE_ORDER = ("test_labels.py", "test_runtime.py", "test_hygiene.py", "test_notebook.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(FILE_ORDER)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: keeps order within a file
    names: dict[str, str] = {}
    for item in items:
        marker = item.get_closest_marker("check")
        base = getattr(item, "originalname", None) or item.name.split("[", 1)[0]
        names[base] = marker.args[0] if marker else base
    out = config.getoption("--dlbase-checks-out")
    if out:
        Path(out).write_text(json.dumps(names, indent=2))


@pytest.fixture(scope="session")
def expect(pytestconfig: pytest.Config) -> dict[str, Any]:
    path = pytestconfig.getoption("--dlbase-expect")
    if not path:
        pytest.skip(f"no expectations file: these checks are run by `dlbase verify` (or set ${EXPECT_ENV})")
    return json.loads(Path(path).read_text())


@pytest.fixture(scope="session")
def default_host(expect: dict[str, Any]):
    """The container as its default user sees it (no ``-u``)."""
    import testinfra

    return testinfra.get_host(f"docker://{expect['container']}")


@pytest.fixture(scope="session")
def root_host(expect: dict[str, Any]):
    """The container as root (what the ``host`` fixture is under verify), for session fixtures."""
    import testinfra

    return testinfra.get_host(f"docker://root@{expect['container']}")


@pytest.fixture(scope="session")
def probe(root_host, expect: dict[str, Any]) -> dict[str, Any]:
    """What is installed, read inside the container by dlbase's own probe (one exec)."""
    from dlbase.image import version_probe

    source = Path(version_probe.__file__).read_text(encoding="utf-8")
    res = root_host.run(f"{VENV_PYTHON} -c %s", source)
    for line in res.stdout.splitlines():
        if line.startswith("DLBASE_PROBE "):
            return json.loads(line[len("DLBASE_PROBE "):])
    pytest.fail(f"the version probe did not run in the image (exit {res.rc}): {res.stderr.strip()[-300:]}",
                pytrace=False)


@pytest.fixture(scope="session")
def env(root_host) -> dict[str, str]:
    """The environment a process in the container gets (the image's ENV)."""
    return dict(line.split("=", 1) for line in root_host.check_output("env").splitlines() if "=" in line)
