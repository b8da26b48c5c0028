"""The one grammar for image references and digests (dlbase.core.reference, .digest).

The tables are written from distribution's reference grammar and go-digest's rules, not
from dlbase's code; the CLI rows prove the check runs before any daemon or registry call
(DOCKER_HOST points at a closed port, so asking the daemon would be exit 6, and a
registry that was asked would be exit 5 or 11)."""

from __future__ import annotations

import pytest

from dlbase.core import digest as digests
from dlbase.core import reference
from dlbase.core.errors import BuildFailed, ExitCode, InvalidInput, MatrixError, RegistryError
from dlbase.trust import keys

D = "a" * 64

VALID = [
    # text, registry, repository, tag, digest
    ("ubuntu", None, "ubuntu", None, None),
    ("ubuntu:22.04", None, "ubuntu", "22.04", None),
    ("dlbase/pytorch:2.6-cu124", None, "dlbase/pytorch", "2.6-cu124", None),
    ("127.0.0.1:5000/x/y:1", "127.0.0.1:5000", "x/y", "1", None),
    ("localhost/x", "localhost", "x", None, None),
    ("localhost:5000/x:y", "localhost:5000", "x", "y", None),
    ("registry.example.com/team/img", "registry.example.com", "team/img", None, None),
    ("[::1]:5000/x/y", "[::1]:5000", "x/y", None, None),
    (f"host:5000/repo:tag@sha256:{D}", "host:5000", "repo", "tag", f"sha256:{D}"),
    (f"x/y@sha256:{D}", None, "x/y", None, f"sha256:{D}"),
    ("a.b/c__d/e-f--g.h_i", "a.b", "c__d/e-f--g.h_i", None, None),
    ("x:_tag", None, "x", "_tag", None),
    ("x:" + "T" * 128, None, "x", "T" * 128, None),
    (f"x@sha512:{'b' * 128}", None, "x", None, f"sha512:{'b' * 128}"),
    ("127.0.0.1:5000", None, "127.0.0.1", "5000", None),  # no '/': a Docker Hub name and a tag, as Docker reads it
]

INVALID = [
    # text, words the message must contain
    ("", "empty image name"),
    ("   ", "empty image name"),
    ("::", "not an image reference"),
    ("::bad::", "not an image reference"),
    ("http://127.0.0.1:5000/x/y:1", "drop the scheme"),
    ("https://registry.example.com/x", "drop the scheme"),
    ("Foo/Bar:x", "upper-case"),
    ("127.0.0.1:5000/Team/img", "upper-case"),
    (f"x@sha256:{'z' * 64}", "lower-case hex"),
    (f"x@sha256:{'A' * 64}", "upper-case hex"),
    ("x@sha256:abc", "64 hex digits"),
    (f"x@md5:{'a' * 32}", "not supported"),
    ("x@", "malformed digest"),
    ("@@@", "malformed digest"),
    ("x/", "empty '/'-separated part"),
    ("x//y", "empty '/'-separated part"),
    ("/x", "empty '/'-separated part"),
    ("x_/y", "separator"),
    ("-x", "separator"),
    ("x y", "character"),
    ("x:.tag", "not a valid tag"),
    ("x:" + "t" * 129, "not a valid tag"),
    ("x:", "not a valid tag"),
    ("host:99999/x", "port"),
    ("host:port/x", "port"),
    ("ho_st.example/x", "not a host name"),
    ("localhost:5000/", "names no repository"),
    ("a/" * 130 + "b", "longer than 255"),
]


@pytest.mark.parametrize("text, registry, repository, tag, digest", VALID)
def test_valid_references_split_into_their_parts(text, registry, repository, tag, digest):
    ref = reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert ref.canonical == text
    assert reference.parse(ref.canonical) == ref


@pytest.mark.parametrize("text, says", INVALID)
def test_invalid_references_say_why(text, says):
    with pytest.raises(reference.ReferenceError) as info:
        reference.parse(text)
    assert says in info.value.message + (info.value.hint or "")
    assert info.value.exit_code == ExitCode.INVALID_INPUT


def test_the_registry_host_rule():
    assert reference.is_registry_host("localhost")
    assert reference.is_registry_host("a.b") and reference.is_registry_host("host:5000")
    assert not reference.is_registry_host("dlbase") and not reference.is_registry_host("library")


def test_docker_hub_spelled_out():
    assert reference.parse("ubuntu:22.04").normalized().canonical == "docker.io/library/ubuntu:22.04"
    assert reference.parse("nvidia/cuda").normalized().name == "docker.io/nvidia/cuda"
    assert reference.parse("index.docker.io/ubuntu").normalized().name == "docker.io/library/ubuntu"
    assert reference.parse("127.0.0.1:5000/x").normalized().name == "127.0.0.1:5000/x"
    assert reference.parse("x").host == "docker.io" and reference.parse("h.io/x").host == "h.io"


def test_a_repository_alone():
    assert reference.parse_repository("127.0.0.1:5000/team/pytorch").repository == "team/pytorch"
    with pytest.raises(reference.ReferenceError, match="tag or digest"):
        reference.parse_repository("team/pytorch:1")


# ------------------------------------------------------------------------ digests


@pytest.mark.parametrize("text, ok", [
    (f"sha256:{D}", True), (f"sha512:{'0' * 128}", True),
    (f"sha256:{'z' * 64}", False), (f"sha256:{'A' * 64}", False), (f"sha256:{D}0", False),
    (D, False), ("sha256:", False), (f"SHA256:{D}", False), (f"sha1:{'a' * 40}", False),
])
def test_digest_syntax(text, ok):
    assert digests.is_digest(text) is ok
    assert (digests.problem(text) is None) is ok


def test_sha256_of_bytes_is_the_known_vector():
    # FIPS 180-2 test vector for "abc"
    assert digests.sha256_of(b"abc") == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert digests.hex_part(digests.sha256_of(b"")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    with pytest.raises(ValueError):
        digests.hex_part(f"sha512:{'0' * 128}")


# ---------------------------------------------------------------- reworded errors


@pytest.mark.parametrize("error", [
    MatrixError("images/matrix.yaml", "bad", lineno=3),
    BuildFailed("build failed", step="RUN x", log_tail=["a"]),
    RegistryError("refused", details=["d"]),
])
def test_reworded_keeps_type_fields_and_details(error):
    """`type(exc)(msg, details=...)` raised TypeError for MatrixError and BuildFailed."""
    new = error.reworded("pushed, but: " + error.message, hint="run it again")
    assert type(new) is type(error) and new.exit_code == error.exit_code
    assert new.message.startswith("pushed, but: ") and str(new) == new.message and new.hint == "run it again"
    assert new.details == error.details and new.details is not error.details
    assert error.message != new.message  # the original is untouched


def test_push_signing_failure_is_reworded_for_any_error(monkeypatch):
    """publish._sign_pushed re-raises whatever typed error attach raised, whatever its __init__."""
    from dlbase.publish import push
    from dlbase.trust import attach

    def fails(*_a, **_k):
        raise BuildFailed("probe failed", step="probe", log_tail=["x"])

    monkeypatch.setattr(attach, "for_push", fails)
    image = push.LocalImage("sha256:" + D, "dlbase/pytorch", "t-abc", None, None)
    with pytest.raises(BuildFailed) as info:
        push._sign_pushed(None, None, None, "127.0.0.1:5000", image, f"sha256:{D}", None, {}, None,
                          lambda _m: None)
    assert "was pushed, but signing/attaching failed: probe failed" in info.value.message
    assert "failing step: probe" in info.value.details


# ---------------------------------------------------------------------- the CLI


@pytest.fixture
def pub(tmp_path):
    path = tmp_path / "cosign.pub"
    path.write_bytes(keys.public_pem(keys.generate()))
    return str(path)


@pytest.mark.parametrize("ref, says", [
    ("::", "not an image reference"),
    ("", "empty image name"),
    ("http://127.0.0.1:5000/x/y:1", "drop the scheme: 127.0.0.1:5000/x/y:1"),
    ("127.0.0.1:5000/X/y:1", "upper-case"),
    (f"127.0.0.1:5000/x/y@sha256:{'z' * 64}", "lower-case hex"),
    (f"127.0.0.1:5000/x/y@sha256:{'A' * 64}", "upper-case hex"),
])
@pytest.mark.parametrize("verb", ["trust", "pull"])
def test_trust_and_pull_refuse_a_bad_reference_before_any_call(cli, monkeypatch, pub, verb, ref, says):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:1")  # Docker Hub, were it asked: exit 5
    res = cli(verb, ref, "--key", pub, "--json")
    assert res.code == int(ExitCode.INVALID_INPUT), res.output
    doc = res.json()
    assert says in doc["message"] + (doc["hint"] or ""), doc
    assert "Traceback" not in res.output


def test_attest_needs_a_registry_host(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    res = cli("verify", f"x/y@sha256:{D}", "--attest", "--key", str(tmp_path / "cosign.key"), "--json")
    assert res.code == int(ExitCode.INVALID_INPUT), res.output
    assert "names no registry host" in res.json()["message"]


def test_attest_with_a_host_gets_past_the_reference_check(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    res = cli("verify", f"127.0.0.1:5000/x/y@sha256:{D}", "--attest", "--key", str(tmp_path / "none.key"), "--json")
    assert res.code == int(ExitCode.MISSING), res.output  # it stops at the missing key instead
    assert "none.key" in res.json()["message"]


def test_invalid_input_is_the_base():
    assert issubclass(reference.ReferenceError, InvalidInput)
