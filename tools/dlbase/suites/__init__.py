"""The test suites dlbase runs against an image, shipped inside the package.

``infra`` holds the host-side testinfra checks `dlbase verify` runs against a running
container; ``image`` holds the pytest suite that runs inside the image (the builds copy
it in from the project, this copy is for tools that need its files without a checkout).

In the repository both are symbolic links to ``tests/infra`` and ``tests/image``, so the
tests stay where a reader looks for them and one copy exists; a built wheel holds real
files. Code finds them through these functions (importlib.resources), never through the
location of a checkout.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

INSTALL_HINT = "reinstall dlbase (`pip install dlbase`); its wheel ships the suites"


def _suite(name: str) -> Path:
    return Path(str(resources.files(__name__).joinpath(name)))


def infra_dir() -> Path:
    """The host-side checks (conftest.py, pytest.ini, test_*.py)."""
    return _suite("infra")


def image_dir() -> Path:
    """The in-image suite (conftest.py, pytest.ini, test_*.py and its helpers)."""
    return _suite("image")
