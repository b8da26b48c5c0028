"""The bench report: ratios come from the numbers of one run, and both files are written."""

from __future__ import annotations

import json
from pathlib import Path

from dlbase.bench.build import BuildBench, write


def _bench() -> BuildBench:
    return BuildBench(variant="v", base_bytes=100, venv_bytes=900, payload_bytes=1000, image_bytes=1100,
                      naive_bytes=2200, cold_seconds=200.0, warm_seconds=5.0, naive_seconds=300.0)


def test_ratios_are_computed_from_the_measured_values() -> None:
    r = _bench().ratios
    assert r == {"image_over_payload": 1.1, "image_over_naive": 0.5, "warm_over_cold": 0.025,
                 "naive_over_cold_seconds": 1.5, "cold_over_naive_seconds": 0.667, "cold_over_classic_seconds": None,
                 "other_over_naive_seconds": None, "cold_over_other_seconds": None}


def _buildkit_bench(second: str) -> BuildBench:
    return BuildBench(variant="v", base_bytes=100, venv_bytes=900, payload_bytes=1000, image_bytes=1100,
                      naive_bytes=2200, cold_seconds=120.0, warm_seconds=6.0, naive_seconds=300.0,
                      builder="buildkit", classic_seconds=240.0, rebuild_seconds=118.0,
                      digests=("sha256:" + "a" * 64, second))


def test_buildkit_side_by_side_ratios_and_the_two_digests_in_json_and_table(tmp_path: Path) -> None:
    same = _buildkit_bench("sha256:" + "a" * 64)
    assert same.ratios["cold_over_classic_seconds"] == 0.5 and same.ratios["cold_over_naive_seconds"] == 0.4
    jpath, _mpath, table = write(same, tmp_path)
    data = json.loads(jpath.read_text())
    assert data["identical"] is True and data["digests"] == ["sha256:" + "a" * 64] * 2
    assert "| cold build (classic builder, no cache) | 240.0 s | buildkit / classic = 0.5 |" in table
    assert "same digest: yes" in table
    differs = _buildkit_bench("sha256:" + "b" * 64)
    assert differs.identical is False and "same digest: NO" in write(differs, tmp_path / "2")[2]


def test_write_produces_json_and_a_markdown_table_with_the_same_numbers(tmp_path: Path) -> None:
    jpath, mpath, table = write(_bench(), tmp_path)
    data = json.loads(jpath.read_text())
    assert data["ratios"]["warm_over_cold"] == 0.025 and data["cold_seconds"] == 200.0
    assert "| warm rebuild (test file changed) | 5.0 s | warm / cold = 0.025 |" in table
    assert table in mpath.read_text()


def _source_project(tmp_path: Path):
    import shutil

    from dlbase.bench.build import COPY
    from dlbase.define.project import Project

    root = Path(__file__).resolve().parents[2]
    src = tmp_path / "src"
    for rel in COPY:
        if (root / rel).is_dir():
            shutil.copytree(root / rel, src / rel)
        elif (root / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, src / rel)
    return Project.discover(src)


def test_the_bench_copy_uses_the_machines_cache_like_its_source(tmp_path: Path, monkeypatch) -> None:
    """A project with no wheelhouse of its own fills the machine's cache; the bench's copy
    must fill the same one (not a wheelhouse of its own, which would download again)."""
    from dlbase.bench.build import copy_project
    from dlbase.build.wheelhouse import default_wheelhouse

    monkeypatch.setenv("DLBASE_CACHE_DIR", str(tmp_path / "cache"))
    project = _source_project(tmp_path)
    copy = copy_project(project, tmp_path / "copy")
    assert not (copy.state_dir / "wheelhouse").exists()
    assert default_wheelhouse("3.11", "p", root=copy.root) == default_wheelhouse("3.11", "p", root=project.root) \
        == tmp_path / "cache" / "wheelhouse" / "3.11-p"


def test_the_bench_copy_links_the_projects_own_wheelhouse(tmp_path: Path) -> None:
    """A project that keeps its own wheelhouse lends it to the copy by a link."""
    from dlbase.bench.build import copy_project
    from dlbase.build.wheelhouse import default_wheelhouse

    project = _source_project(tmp_path)
    (project.state_dir / "wheelhouse").mkdir(parents=True)
    copy = copy_project(project, tmp_path / "copy")
    shared = copy.state_dir / "wheelhouse"
    assert shared.is_symlink() and shared.is_dir()
    assert default_wheelhouse("3.11", "p", root=copy.root).resolve().parent == \
        (project.state_dir / "wheelhouse").resolve()


LOG = """[stage-1 20/20] RUN /opt/venv/bin/python -B /opt/dlbase/install_group.py flavor
exporting to image
exporting layers done (61.2s)
exporting manifest sha256:aaaa done (0.0s)
exporting config sha256:bbbb done (0.0s)
naming to moby-dangling@sha256:aaaa done (0.0s)
unpacking to moby-dangling@sha256:aaaa done (31.5s)
"""


def test_the_exporter_phases_are_read_from_the_build_log() -> None:
    from dlbase.bench.build import phase_seconds

    assert phase_seconds(LOG) == {"exporting layers": 61.2, "exporting manifest": 0.0, "exporting config": 0.0,
                                  "naming to": 0.0, "unpacking to": 31.5}
    assert phase_seconds("step 1/2 RUN echo exporting layers done (5.0s) in a RUN's output\n") == {}


def test_zstd_and_gzip_cold_builds_side_by_side_in_the_table(tmp_path: Path) -> None:
    bench = BuildBench(variant="v", base_bytes=100, venv_bytes=900, payload_bytes=1000, image_bytes=1100,
                       naive_bytes=2200, cold_seconds=100.0, warm_seconds=None, naive_seconds=400.0,
                       builder="buildkit", compression="zstd", other_compression="gzip", other_seconds=250.0,
                       cold_phases={"exporting layers": 20.0, "unpacking to": 30.0},
                       other_phases={"exporting layers": 170.0, "unpacking to": 31.0})
    assert bench.ratios["cold_over_naive_seconds"] == 0.25 and bench.ratios["cold_over_other_seconds"] == 0.4
    _j, _m, table = write(bench, tmp_path)
    assert ("| cold build (buildkit, zstd layers, no cache) | 100.0 s | cold / naive = 0.25; of which "
            "exporting layers 20.0 s, unpacking to 30.0 s |") in table
    assert "| cold build (buildkit, gzip layers, no cache) | 250.0 s | gzip / naive = 0.625; zstd / gzip = 0.4" in table
    assert "warm rebuild" not in table  # skipped: no row, not a zero
