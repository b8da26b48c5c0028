"""Measured sizes are data: recorded into images/sizes.json and shown in the README table."""

from __future__ import annotations

from pathlib import Path

from dlbase.define import render
from dlbase.define.project import Project


def test_recorded_size_appears_in_the_readme_table_and_stays_drift_free(project_copy: Path) -> None:
    project = Project.discover(project_copy)
    name = project.matrix.default
    render.record_size(project, name, 6_123_000_000, "abcdef012345")
    render.write(project)
    row = next(line for line in (project_copy / "README.md").read_text().splitlines()
               if line.startswith(f"| `{name}` |"))
    assert "6.12 GB (lock abcdef012345)" in row
    render.check(project)  # no drift right after recording
    other = next(v.name for v in project.matrix.variants if v.name != name)
    assert f"| `{other}` |" in (project_copy / "README.md").read_text()
