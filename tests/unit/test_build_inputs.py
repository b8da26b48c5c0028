"""One derivation of a build's inputs (dlbase.build.inputs), and `rebuild-check` asking
`dlbase build` for exactly what a plain `dlbase build` asks for: with BuildKit every label
and build argument is part of the digest, so any value derived a second way makes the
rebuilt digest differ from the published one. The end-to-end check (build, push,
rebuild-check --attest, trust) is tests/integration/test_rebuilt_attest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlbase.build import builder as build_mod
from dlbase.build import inputs as inputs_mod
from dlbase.build import reproduce
from dlbase.core.errors import InvalidInput
from dlbase.define.project import Project
from dlbase.define.spec import BuildSpec
from dlbase.engine.builderchoice import BuilderChoice

ROOT = Path(__file__).resolve().parents[2]
BASE = "sha256:" + "b" * 64


@pytest.fixture
def project() -> Project:
    return Project.discover(ROOT)


def _derive(project: Project, **kw) -> inputs_mod.BuildInputs:
    spec = BuildSpec.of(project.compat, project.matrix.default_variant)
    return inputs_mod.derive(project, spec, lock_hash="abc123", base_ref="dlbase/debian:12-minbase",
                             base_digest=BASE, **kw)


def test_two_derivations_of_one_commit_are_equal_and_carry_one_epoch(project, monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    monkeypatch.delenv("DLBASE_WHEELHOUSE_PORT", raising=False)
    one, two = _derive(project, extra_labels={"ci": "1"}), _derive(project, extra_labels={"ci": "1"})
    assert one == two
    args = one.buildargs("http://127.0.0.1:38211/")
    assert args["WHEELHOUSE"] == "http://127.0.0.1:38211/" and args["SOURCE_DATE_EPOCH"] == "1700000000"
    assert args["OCI_CREATED"] == "2023-11-14T22:13:20Z" and args["DLBASE_LOCK_HASH"] == "abc123"
    assert args["OCI_BASE_DIGEST"] == BASE and args["OCI_REVISION"] == one.revision
    assert one.extra_labels == {"ci": "1"} and one.wheelhouse_port == inputs_mod.DEFAULT_WHEELHOUSE_PORT
    assert one.dockerfile == f"images/{project.matrix.default}/Dockerfile"


def test_the_port_is_the_callers_else_the_environments_else_the_default(project, monkeypatch) -> None:
    monkeypatch.delenv("DLBASE_WHEELHOUSE_PORT", raising=False)
    assert inputs_mod.wheelhouse_port() == 38211
    monkeypatch.setenv("DLBASE_WHEELHOUSE_PORT", "40001")
    assert inputs_mod.wheelhouse_port() == 40001 and _derive(project).wheelhouse_port == 40001
    assert inputs_mod.wheelhouse_port(40002) == 40002 and _derive(project, port=40002).wheelhouse_port == 40002
    monkeypatch.setenv("DLBASE_WHEELHOUSE_PORT", "high")
    with pytest.raises(InvalidInput) as info:
        inputs_mod.wheelhouse_port()
    assert "DLBASE_WHEELHOUSE_PORT='high'" in info.value.message and info.value.hint


def test_a_wheelhouse_served_elsewhere_is_said_since_the_digest_then_differs() -> None:
    said: list[str] = []
    assert build_mod.served_on("http://127.0.0.1:38211/", 38211, said.append) == 38211 and said == []
    assert build_mod.served_on("http://127.0.0.1:40123/", 38211, said.append) == 40123
    assert len(said) == 1 and "port 38211 is in use" in said[0] and "digest differs" in said[0]


class _Engine:
    def choose_builder(self, requested: str) -> BuilderChoice:
        return BuilderChoice("buildkit", requested, "test")

    def image_ids(self) -> frozenset[str]:
        return frozenset()

    def remove_made(self, image_ids, existed, *, force: bool = False) -> list[str]:
        return []


def test_rebuild_check_asks_build_for_what_a_plain_build_asks(project, monkeypatch) -> None:
    """No label of its own (a build-id of rebuild-check's making was one: every rebuilt
    digest differed from the built one), the caller's extra labels as they are, and the
    second build serves the wheelhouse on the first one's port."""
    calls: list[dict] = []

    def fake_build(project, spec, engine, **kw):
        calls.append(kw)
        return build_mod.BuildResult(variant=spec.name, image_id="sha256:" + "d" * 64, immutable_tag="r:i",
                                     moving_tag="r:m", tags=[], lock_hash="abc123", base_ref="b", base_digest=BASE,
                                     seconds=1.0, size_bytes=1, log_file="l", source_date_epoch=1700000000,
                                     revision="f00d", wheelhouse_port=40555)

    monkeypatch.setattr(build_mod, "build", fake_build)
    spec = BuildSpec.of(project.compat, project.matrix.default_variant)
    result = reproduce.rebuild_check(project, spec, _Engine(), extra_labels={"ci": "7"}, keep=True)
    assert [c["extra_labels"] for c in calls] == [{"ci": "7"}, {"ci": "7"}]
    assert [c["wheelhouse_port"] for c in calls] == [None, 40555]
    assert all(c["nocache"] and not c["tag"] and not c["check_versions"] for c in calls)
    assert result.reproducible and result.revision == "f00d" and result.wheelhouse_port == 40555
    assert result.source_date_epoch == 1700000000
