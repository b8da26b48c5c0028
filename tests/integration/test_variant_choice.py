"""Which image a variant name runs, on a real daemon, with tiny images of two repositories.

`dlbase run VARIANT` outside a project ran the newest image carrying the variant label, from
whatever repository: another project's image of the same variant name ran instead of the
user's, and nothing said which one it was. Now the matrix's repository is preferred, images
of several repositories are refused and listed, and the image ID that runs is printed (and
in --json). The project verbs (`report` here) resolve a variant through the same rule.

Each image is a Debian base with labels only (a second or two to build), carries this
session's label (the finaliser removes it) and a variant name of this session's own, so
images other people keep on the shared daemon cannot make the test ambiguous.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import SESSION_ID

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
SID = SESSION_ID[:8]


@pytest.fixture(scope="module")
def tiny(engine, debian_base, session_labels, tmp_path_factory):
    """``tiny(variant, "repo:tag", ...)`` -> the ID of a new image labelled with ``variant``."""

    def make(variant: str, *refs: str) -> str:
        ctx = tmp_path_factory.mktemp("tiny")
        (ctx / "Dockerfile").write_text(f"FROM {debian_base.ref}\nLABEL dlbase.variant={variant} "
                                        f"dlbase.test-which={refs[0] if refs else 'untagged'}\n")
        image_id = engine.build(ctx, labels=session_labels)
        for ref in refs:
            repo, tag = ref.rsplit(":", 1)
            engine.tag(image_id, repo, tag)
        return image_id

    return make


def dlbase(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DLBASE_ROOT"}
    return subprocess.run([sys.executable, "-m", "dlbase", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=120, stdin=subprocess.DEVNULL)


def test_images_of_two_repositories_are_refused_and_listed(tiny, engine, tmp_path):
    variant = f"dlbase-test-{SID}-two"
    mine = tiny(variant, f"dlbase-test-{SID}-mine/pt:1")
    theirs = tiny(variant, f"dlbase-test-{SID}-theirs/pt:1")  # the newer one: it used to run
    proc = dlbase("run", variant, "--", "true", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert f"dlbase-test-{SID}-mine/pt:1 ({mine[7:19]})" in proc.stderr
    assert f"dlbase-test-{SID}-theirs/pt:1 ({theirs[7:19]})" in proc.stderr
    assert "Traceback" not in proc.stderr and "image ID" in proc.stderr
    as_json = dlbase("run", "--json", variant, "--", "true", cwd=tmp_path)
    doc = json.loads(as_json.stdout)
    assert as_json.returncode == 2 and doc["exit_code"] == 2 and doc["error"] == "AmbiguousImage"
    assert len(doc["details"]) == 2
    # naming one of them runs exactly that one
    chosen = dlbase("run", "--json", f"dlbase-test-{SID}-mine/pt:1", "--", "true", cwd=tmp_path)
    assert chosen.returncode == 0, chosen.stderr
    assert json.loads(chosen.stdout)["image_id"] == mine


def test_one_repository_runs_and_the_image_id_is_printed(tiny, tmp_path):
    variant = f"dlbase-test-{SID}-one"
    older = tiny(variant, f"dlbase-test-{SID}-solo/pt:old")
    newer = tiny(variant, f"dlbase-test-{SID}-solo/pt:new")
    assert older != newer
    proc = dlbase("run", variant, "--", "true", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"running dlbase-test-{SID}-solo/pt:new ({newer[7:19]})" in proc.stderr
    assert "the only repository" in proc.stderr
    doc = json.loads(dlbase("run", "--json", variant, "--", "true", cwd=tmp_path).stdout)
    assert doc["image_id"] == newer and doc["image"] == f"dlbase-test-{SID}-solo/pt:new"


def project_dir(root: Path, name: str) -> tuple[str, str]:
    """Make ``root`` a checkout-like folder whose matrix names a repository of this session's
    own, so the default variant's real images on the daemon (other people's) are strangers
    to it -> (that repository, the default variant)."""
    repo = f"dlbase-test-{SID}-{name}/pytorch"
    (root / "images").mkdir()
    text = (ROOT / "images" / "matrix.yaml").read_text()
    (root / "images" / "matrix.yaml").write_text(re.sub(r"(?m)^repository: .*$", f"repository: {repo}", text))
    (root / "images" / "compat.yaml").write_text((ROOT / "images" / "compat.yaml").read_text())
    default = re.search(r"(?m)^default: (\S+)", text)
    assert default, "matrix.yaml names its default variant"
    return repo, default.group(1)


def test_the_matrix_repository_wins_over_a_newer_stranger(tiny, tmp_path):
    repo, variant = project_dir(tmp_path, "matrix")
    ours = tiny(variant, f"{repo}:test-{SID}")  # not the moving tag: found by the label
    tiny(variant, f"dlbase-test-{SID}-stranger/pytorch:latest")
    proc = dlbase("run", "--json", variant, "--", "true", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["image_id"] == ours
    assert f"matrix's repository {repo}" in proc.stderr


def test_project_verbs_refuse_the_same_ambiguity(tiny, tmp_path):
    """`report` (like verify, push and scan) takes a variant through the same resolver."""
    repo, variant = project_dir(tmp_path, "empty")  # holds nothing: the strangers decide
    tiny(variant, f"dlbase-test-{SID}-x/pytorch:1")
    tiny(variant, f"dlbase-test-{SID}-y/pytorch:1")
    proc = dlbase("report", variant, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert f"dlbase-test-{SID}-x/pytorch:1" in proc.stderr and f"dlbase-test-{SID}-y/pytorch:1" in proc.stderr
    assert f"none is in the matrix's repository {repo}" in proc.stderr
