"""Whether PyPI answers from this machine: the tests that resolve or download for real
(marked ``network``) skip with the reason when it does not, and say which it was.

Asked once per session (a module-level value), since every such module needs the same
answer and each asking costs a connection."""

from __future__ import annotations

import socket

import pytest
import requests

PYPI = "https://pypi.org/simple"


def _pypi_reachable() -> str | None:
    """None when PyPI answers, else the reason to skip."""
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        r = requests.get(f"{PYPI}/six/", timeout=10,
                         headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        r.raise_for_status()
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot test here"
        return f"PyPI is not reachable from this machine: {type(exc).__name__}: {exc}"
    return None


#: None when PyPI answers, else why the network tests skip.
PYPI_SKIP: str | None = _pypi_reachable()

#: The marks of a module that needs PyPI: ``network``, and skipped with the reason above.
NEEDS_PYPI = [pytest.mark.network, pytest.mark.skipif(PYPI_SKIP is not None, reason=PYPI_SKIP or "")]
