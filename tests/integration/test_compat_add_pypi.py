"""`dlbase compat add` against the real PyPI: what it reads for today's release and for 2.6.0
equals what images/compat.yaml says (the 2.6.0 row was written by hand, the 2.14.1 one by
the tool), and torch 2.15.0 is refused while no torchvision pairs with it."""

from __future__ import annotations

import pytest
import requests

from dlbase.core.errors import InvalidInput
from dlbase.define.project import Project
from dlbase.define import compat_add
from dlbase.define.release_checks import wheel_findings

PYPI = "https://pypi.org/simple"


def _pypi_reachable() -> str | None:
    try:
        requests.get(f"{PYPI}/torch/", timeout=10).raise_for_status()
    except requests.RequestException as exc:
        return f"PyPI cannot be reached: {exc}"
    return None


_SKIP = _pypi_reachable()
pytestmark = [pytest.mark.network, pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")]


@pytest.mark.parametrize("variant", ["torch2.14-cu130-runtime-debian13", "torch2.6-cu124-runtime-debian12"])
def test_the_committed_rows_agree_with_the_wheels_on_pypi(variant):
    project = Project.discover()
    findings = wheel_findings(project, project.matrix.get(variant), {})
    assert not findings, [f.message for f in findings]


def test_2_14_1_reads_its_cuda13_facts_in_seconds_without_downloading_a_wheel():
    d = compat_add.derive("2.14.1", index_url=PYPI, python="3.13")
    assert (d.line, d.cuda, d.cudnn, d.nccl, d.cublas, d.torchvision, d.torchaudio) == (
        "cu130", "13.0", "9.24.0.43", "2.30.7", "13.1.1.3", "0.29.2", None)


def test_2_15_0_has_no_torchvision_pair_yet():
    with pytest.raises(InvalidInput, match="no torchvision pair"):
        compat_add.derive("2.15.0", index_url=PYPI, python="3.13")
