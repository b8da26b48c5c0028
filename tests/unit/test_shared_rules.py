"""One rule, two implementations: dlbase's and the in-image preflight's, over one table.

runtime/preflight.py runs in the image as ``python -I -S`` and cannot import dlbase, so it
carries its own copy of the size grammar, the driver-version and compute-capability
readings and the arch-list rule. tests/unit/data/shared_rules.json is the rule; every row
runs through both copies, so a change to one copy that the other (or the table) lacks fails.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from dlbase.core import gpu, sizes
from dlbase.verify import doctor

ROOT = Path(__file__).resolve().parents[2]
TABLE = json.loads((Path(__file__).parent / "data" / "shared_rules.json").read_text(encoding="utf-8"))
_spec = importlib.util.spec_from_file_location("dlbase_preflight_rules", ROOT / "runtime" / "preflight.py")
pf = importlib.util.module_from_spec(_spec)
sys.modules["dlbase_preflight_rules"] = pf
_spec.loader.exec_module(pf)


def _ids(rows: list) -> list[str]:
    return [repr(r[0])[:24] if isinstance(r, list) else f"{r['cap']}-{'+'.join(r['arch_list'])}"[:40] for r in rows]


def _parse_or_none(fn, text):
    try:
        return fn(text)
    except ValueError:
        return None


@pytest.mark.parametrize("text, expected", TABLE["sizes"], ids=_ids(TABLE["sizes"]))
def test_sizes(text: str, expected: int | None) -> None:
    assert _parse_or_none(sizes.parse, text) == expected
    assert _parse_or_none(pf.parse_size, text) == expected


@pytest.mark.parametrize("text, expected", TABLE["versions"], ids=_ids(TABLE["versions"]))
def test_driver_versions(text: str, expected: list[int] | None) -> None:
    want = tuple(expected) if expected is not None else None
    assert gpu.version_tuple(text) == want
    assert pf.version_tuple(text) == want


@pytest.mark.parametrize("have, floor, expected", TABLE["at_least"], ids=_ids(TABLE["at_least"]))
def test_driver_comparison(have: str, floor: str, expected: bool | None) -> None:
    assert gpu.at_least(have, floor) is expected
    assert pf.at_least(have, floor) is expected


@pytest.mark.parametrize("text, expected", TABLE["compute_caps"], ids=_ids(TABLE["compute_caps"]))
def test_compute_capabilities(text: str, expected: list[int] | None) -> None:
    want = tuple(expected) if expected is not None else None
    assert gpu.compute_capability(text) == want
    assert pf.compute_capability(text) == want


@pytest.mark.parametrize("row", TABLE["arch"], ids=_ids(TABLE["arch"]))
def test_arch_support(row: dict) -> None:
    cap, want = tuple(row["cap"]), tuple(row["support"])
    assert gpu.support(cap, row["arch_list"]) == want
    assert pf.arch_support(cap, row["arch_list"]) == want


def test_sm_90a_counts_for_doctor_and_the_preflight_alike() -> None:
    """The disagreement that started this: doctor accepted sm_90a, the preflight skipped it."""
    line = doctor.Line("cu999", "99.9", "550.54.14", "525.60.13", ("sm_80", "sm_90a"), ("v",))
    assert doctor.arch_verdict("9.0", line)[0] == doctor.OK
    assert pf.arch_support((9, 0), ["sm_80", "sm_90a"])[0] == "native"
    assert pf.check_arch(pf.GpuFacts("550.54.15", (pf.Gpu(0, "H100", (9, 0)),)),
                         {"arch_list": ["sm_80", "sm_90a"]}, True).status == "ok"


def test_one_shm_default_and_floor_for_every_side() -> None:
    assert sizes.DEFAULT_SHM == TABLE["shm"]["default"]
    assert sizes.MIN_SHM_BYTES == TABLE["shm"]["min_bytes"] == pf.DEFAULT_MIN_SHM == doctor.SHM_MIN_BYTES
    assert doctor.SHM_GOOD_BYTES == sizes.parse(sizes.DEFAULT_SHM)
    from dlbase.engine import launcher
    from dlbase.verify import runner

    assert launcher.DEFAULT_SHM is sizes.DEFAULT_SHM and runner.DEFAULT_SHM is sizes.DEFAULT_SHM


def test_doctor_and_the_preflight_ask_nvidia_smi_the_same_question() -> None:
    assert pf.SMI_QUERY == doctor.SMI_QUERY and pf.SMI_QUERY_OLD == doctor.SMI_QUERY_OLD


@pytest.mark.parametrize("n, text", [(8 << 30, "8g"), (1 << 40, "1024g"), (512 << 20, "512m"), (1536, "1536"),
                                     (64 << 10, "64k"), (100, "100")])
def test_canonical_form_reads_back_as_the_same_bytes(n: int, text: str) -> None:
    assert sizes.canonical(n) == text and sizes.parse(text) == n
    from docker.utils import parse_bytes  # what the daemon's client does with the string

    assert parse_bytes(text) == n
