"""The layer/file diff behind `rebuild-check`: which layer, which step, which files, why.

The layouts here are real OCI image layout tars (gzip layers, config with history,
manifest, index.json), written in the test the way `docker buildx build --output
type=oci` lays them out, so the reader and the comparison run on the real format.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

import pytest

from dlbase.examine import layerdiff

STATUS_A = ("Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nVersion: 3.0.15-1~deb12u1\n\n"
            "Package: tini\nStatus: install ok installed\nArchitecture: amd64\nVersion: 0.19.0-1\n\n")
STATUS_B = STATUS_A.replace("3.0.15-1~deb12u1", "3.0.17-1~deb12u2")


def _member(name: str, data: bytes | None = None, *, mode: int = 0o644, mtime: int = 1700000000,
            uid: int = 0, kind: bytes = tarfile.REGTYPE, link: str = "") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.mode, info.mtime, info.uid, info.gid, info.type, info.linkname = mode, mtime, uid, uid, kind, link
    if data is not None:
        info.size = len(data)
    return info, data


def _layer(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return gzip.compress(raw.getvalue(), mtime=0)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layout(layers: list[bytes], steps: list[str], *, labels: dict[str, str] | None = None,
           via_index: bool = False) -> bytes:
    """An OCI layout tar of one image with these (gzip) layers, made by these steps."""
    blobs: dict[str, bytes] = {}

    def put(data: bytes) -> str:
        blobs[_digest(data)] = data
        return _digest(data)

    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": labels or {}},
                         "rootfs": {"type": "layers", "diff_ids": [_digest(gzip.decompress(x)) for x in layers]},
                         "history": [{"created_by": "ENV A=1", "empty_layer": True}]
                         + [{"created_by": s} for s in steps]}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"digest": put(config), "size": len(config)},
                           "layers": [{"digest": put(x), "size": len(x),
                                       "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"} for x in layers]}
                          ).encode()
    desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(manifest),
            "size": len(manifest), "platform": {"architecture": "amd64", "os": "linux"}}
    if via_index:
        nested = json.dumps({"schemaVersion": 2, "mediaType": layerdiff.INDEX_TYPES[0], "manifests": [desc]}).encode()
        desc = {"mediaType": layerdiff.INDEX_TYPES[0], "digest": put(nested), "size": len(nested)}
    index = json.dumps({"schemaVersion": 2, "manifests": [desc]}).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index),
                           *((f"blobs/sha256/{d[7:]}", b) for d, b in blobs.items())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


BASE = _layer([_member("etc", kind=tarfile.DIRTYPE, mode=0o755), _member("etc/os-release", b"debian\n")])
STEPS = ["base", "RUN apt-get install tini", "RUN useradd dl", "COPY tests/image/ /opt/dlbase/tests/"]


def _apt(status: str, aux: bytes = b"aux") -> bytes:
    return _layer([_member("var/lib/dpkg/status", status.encode()), _member("var/cache/ldconfig/aux-cache", aux),
                   _member("usr/bin/tini", b"\x7fELF", mode=0o755)])


def _read(data: bytes) -> layerdiff.Image:
    return layerdiff.read_layout(io.BytesIO(data))


def test_same_layout_same_digest_and_no_layer_differs():
    layers = [BASE, _apt(STATUS_A), _layer([_member("etc/shadow", b"dl:!::0:::\n", mode=0o640)]),
              _layer([_member("opt/dlbase/tests/t.py", b"x")])]
    a, b = _read(layout(layers, STEPS)), _read(layout(layers, STEPS))
    found = layerdiff.diff_images(a, b)
    assert found.identical and found.layers == [] and found.config == []
    assert a.manifest_digest.startswith("sha256:") and a.layers[1].step == "RUN apt-get install tini"
    assert a.layers[1].entries["usr/bin/tini"].mode == 0o755


def test_the_layer_its_step_and_the_file_with_its_reason_are_named():
    user_a = _layer([_member("etc/shadow", b"dl:!:20789:0:::\n", mode=0o640)])
    user_b = _layer([_member("etc/shadow", b"dl:!:20790:0:::\n", mode=0o640)])
    tests = _layer([_member("opt/dlbase/tests/t.py", b"x")])
    found = layerdiff.diff_images(_read(layout([BASE, _apt(STATUS_A), user_a, tests], STEPS)),
                                  _read(layout([BASE, _apt(STATUS_A), user_b, tests], STEPS)))
    assert not found.identical
    assert [(d.index, d.step) for d in found.layers] == [(3, "RUN useradd dl")]
    assert [(f.path, f.reasons) for f in found.layers[0].files] == [("etc/shadow", ["content"])]
    # the config differs only in that layer's diff_id, which the layer diff reports, not the config list
    assert found.config == []


@pytest.mark.parametrize(("b_member", "why"), [
    (dict(mode=0o600), ["mode"]),
    (dict(mtime=1800000000), ["mtime"]),
    (dict(uid=1000), ["owner"]),
    (dict(data=b"other", mtime=1800000000), ["content", "mtime"]),
    (dict(kind=tarfile.SYMTYPE, link="/elsewhere", data=None), ["type"]),
])
def test_each_reason(b_member, why):
    a = {"data": b"same", "mode": 0o644, "mtime": 1700000000, "uid": 0}
    b = {**a, **b_member}
    la = _layer([_member("opt/f", a.pop("data"), **a)])
    lb = _layer([_member("opt/f", b.pop("data"), **b)])
    found = layerdiff.diff_images(_read(layout([BASE, la], STEPS[:2])), _read(layout([BASE, lb], STEPS[:2])))
    assert [(f.path, f.reasons) for f in found.layers[0].files] == [("opt/f", why)]


def test_only_in_one_build_and_a_layer_only_one_image_has():
    one = _layer([_member("opt/a", b"1")])
    two = _layer([_member("opt/a", b"1"), _member("opt/b", b"2")])
    found = layerdiff.diff_images(_read(layout([BASE, one], STEPS[:2])),
                                  _read(layout([BASE, two, one], STEPS[:3])))
    assert [(f.path, f.reasons) for f in found.layers[0].files] == [("opt/b", ["only in build 2"])]
    assert found.layers[1].index == 3 and found.layers[1].digests[0] == ""
    assert [f.reasons for f in found.layers[1].files] == [["only in build 2"]]
    assert found.layer_counts == (2, 3)


def test_the_apt_layer_names_the_package_versions_that_moved():
    found = layerdiff.diff_images(_read(layout([BASE, _apt(STATUS_A)], STEPS[:2])),
                                  _read(layout([BASE, _apt(STATUS_B, aux=b"aux2")], STEPS[:2])))
    layer = found.layers[0]
    assert layer.debian_packages == {"changed": [["libssl3", "3.0.15-1~deb12u1", "3.0.17-1~deb12u2"]]}
    assert {f.path for f in layer.files} == {"var/lib/dpkg/status", "var/cache/ldconfig/aux-cache"}


def test_labels_differ_in_the_config_only():
    layers = [BASE, _apt(STATUS_A)]
    found = layerdiff.diff_images(_read(layout(layers, STEPS[:2], labels={"x": "1"})),
                                  _read(layout(layers, STEPS[:2], labels={"x": "2"})))
    assert not found.identical and found.layers == []
    assert found.config == [("config.Labels.x", "1", "2")]


def test_a_manifest_behind_an_image_index_is_found():
    image = _read(layout([BASE], STEPS[:1], via_index=True))
    assert [layer.step for layer in image.layers] == ["base"]


def test_not_a_layout_is_a_value_error():
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(ValueError, match="index.json"):
        layerdiff.read_layout(io.BytesIO(out.getvalue()))


def test_explain_says_where_and_why_first_layer_first():
    found = layerdiff.diff_images(_read(layout([BASE, _apt(STATUS_A)], STEPS[:2])),
                                  _read(layout([BASE, _apt(STATUS_B, aux=b"aux2")], STEPS[:2])))
    lines = layerdiff.explain(found)
    assert lines[0] == ("layer 2 (RUN apt-get install tini): 2 file(s) differ (content: 2); "
                        "mirror moved: libssl3 3.0.15-1~deb12u1 -> 3.0.17-1~deb12u2")


def test_a_build_argument_in_the_history_is_named():
    layers = [BASE, _apt(STATUS_A)]
    a = layout(layers, ["base", "RUN |1 WHEELHOUSE=http://127.0.0.1:38211/ /bin/sh -c install # buildkit"])
    b = layout(layers, ["base", "RUN |1 WHEELHOUSE=http://127.0.0.1:40000/ /bin/sh -c install # buildkit"])
    found = layerdiff.diff_images(_read(a), _read(b))
    assert [k for k, _x, _y in found.config] == ["history.2.created_by"]
    assert any("wheelhouse URL" in line for line in layerdiff.explain(found))


@pytest.mark.parametrize(("created_by", "short"), [
    ("RUN |4 DEBIAN_FRONTEND=noninteractive WHEELHOUSE=http://127.0.0.1:38211/ PIP_EXTRA_INDEX_URL= "
     "/bin/bash -o pipefail -c python3.11 -m venv /opt/venv  && x # buildkit", "RUN python3.11 -m venv /opt/venv && x"),
    ("COPY images/_build/install_group.py /opt/dlbase/install_group.py # buildkit",
     "COPY images/_build/install_group.py /opt/dlbase/install_group.py"),
    ("RUN /bin/sh -c apt-get update", "RUN apt-get update"),
])
def test_short_step(created_by, short):
    assert layerdiff.short_step(created_by) == short
