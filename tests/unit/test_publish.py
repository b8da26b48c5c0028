"""Publishing logic without a daemon: stream error classification, tag resolution,
the verification gate."""

from __future__ import annotations

import pytest
from dlbase import engine as engine_mod
from dlbase.core import errors
from dlbase.publish import push as publish
from dlbase.verify import records
from dlbase.engine.transfer import raise_stream_error
from dlbase.define.project import Project


@pytest.mark.parametrize("message,kind", [
    ("Get \"http://127.0.0.1:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused", errors.Unreachable),
    ("unauthorized: authentication required", errors.RegistryError),
    ("received unexpected HTTP status: 500 Internal Server Error", errors.RegistryError),
])
def test_stream_errors_are_raised_typed(message, kind):
    with pytest.raises(kind) as info:
        raise_stream_error({"errorDetail": {"message": message}, "error": message}, "push of x")
    assert message in info.value.message
    raise_stream_error({"status": "Pushed", "id": "abc"}, "push of x")  # not an error


class FakeApi:
    def __init__(self, chunks):
        self.chunks = chunks
        self.tags = {}

    def push(self, repository, tag=None, stream=False, decode=False, auth_config=None):
        self.auth = auth_config
        return iter(self.chunks)


def fake_engine(chunks):
    eng = engine_mod.Engine()
    eng._client_obj = type("C", (), {"api": FakeApi(chunks)})()
    return eng


def test_push_reads_digest_and_detects_error_inside_the_stream():
    digest = "sha256:" + "a" * 64
    ok = fake_engine([{"status": "Preparing", "id": "l1", "progressDetail": {}},
                      {"status": "Pushed", "id": "l1", "progressDetail": {}},
                      {"status": f"t: digest: {digest} size: 527"},
                      {"aux": {"Tag": "t", "Digest": digest, "Size": 527}}])
    events = []
    result = ok.push("h:5000/r", "t", auth_config={"username": "u", "password": "p"}, on_event=events.append)
    assert result.digest == digest and result.layers == {"l1": "Pushed"}
    assert events[-1].kind == "done"
    bad = fake_engine([{"status": "Pushing", "id": "l1", "progressDetail": {"current": 1, "total": 9}},
                       {"errorDetail": {"message": "blob upload unknown"}, "error": "blob upload unknown"}])
    with pytest.raises(errors.RegistryError, match="blob upload unknown"):
        bad.push("h:5000/r", "t")
    silent = fake_engine([{"status": "Pushed", "id": "l1"}])
    with pytest.raises(errors.RegistryError, match="without the registry naming a digest"):
        silent.push("h:5000/r", "t")


class FakeEngine:
    def __init__(self, tags, labels):
        self._tags, self._labels = tags, labels

    def image_exists(self, ref):
        return True

    def inspect_image(self, ref):
        return {"Id": "sha256:" + "c" * 64, "RepoTags": self._tags, "Config": {"Labels": self._labels}}


def test_resolve_picks_immutable_and_moving(tmp_path):
    project = Project.discover()
    labels = {"dlbase.lock-hash": "0123456789ab", "dlbase.variant": project.matrix.default}
    eng = FakeEngine(["dlbase/pytorch:2.6.0-x-0123456789ab", "dlbase/pytorch:2.6-cu124-runtime-debian12",
                      "127.0.0.1:5000/dlbase/pytorch:2.6-cu124-runtime-debian12", "other:tag"], labels)
    img = publish.resolve(project, eng, "dlbase/pytorch:2.6.0-x-0123456789ab")
    assert (img.repository, img.immutable, img.moving) == ("dlbase/pytorch", "2.6.0-x-0123456789ab",
                                                           "2.6-cu124-runtime-debian12")
    with pytest.raises(errors.InvalidInput, match="no immutable tag"):
        publish.resolve(project, FakeEngine(["dlbase/pytorch:latest"], labels), "dlbase/pytorch:latest")
    with pytest.raises(errors.InvalidInput, match="lock-hash"):
        publish.resolve(project, FakeEngine(["x:y"], {}), "x:y")


def test_verification_gate(tmp_path):
    project = Project(root=tmp_path, matrix_file=tmp_path / "m", compat_file=tmp_path / "c")
    img = publish.LocalImage(image_id="sha256:" + "d" * 64, repository="r", immutable="i-1", moving=None,
                             variant=None)
    with pytest.raises(errors.NotVerified) as info:
        publish.check_publishable(project, img, force=False)
    assert info.value.exit_code == 10
    assert publish.check_publishable(project, img, force=True)["forced"] is True
    records.record(project, img.image_id, passed=False, summary={})
    with pytest.raises(errors.NotVerified, match="failed its verification"):
        publish.check_publishable(project, img, force=False)
    records.record(project, img.image_id, passed=True, summary={})
    assert publish.check_publishable(project, img, force=True)["forced"] is False
