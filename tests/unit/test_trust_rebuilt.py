"""The rebuilt-identical evidence without a registry: the predicate and its view, the
comparison with the published digest (nothing is vouched for a different one), the signed
statement's subject and type, the rebuilder role in the policy (file, flags, decisions),
the trust table, the provenance's Debian packages, the one dpkg status reader, and the
verb's bad input (refused before anything is built)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from dlbase.cli.commands import _trustview
from dlbase.core.errors import ExitCode, InvalidInput, MatrixError, Missing, NotReproducible, WrongSubject
from dlbase.image import debian
from dlbase.trust import evidence, keys, policyfile, predicates, rebuilt, statements, verdict
from dlbase.verify import hostfacts
from dlbase.trust.policy import (PUBLISHER, REBUILDER, SCANNER, VERIFIER, RebuildRequirement, TrustedKey,
                                 TrustPolicy)

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
NAME = "127.0.0.1:5000/dlbase/pytorch"
SUBJECT = f"{NAME}@{DIGEST}"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def trusted(role: str, label: str) -> TrustedKey:
    public = keys.generate().public
    return TrustedKey(public=public, fingerprint=keys.fingerprint(public), roles=((role, label),), source="test")


PUB, SECOND, OTHER_ORG, GPU = (trusted(PUBLISHER, "release"), trusted(REBUILDER, "second"),
                               trusted(REBUILDER, "other-org"), trusted(VERIFIER, "h200"))


def result(digests=(DIGEST, DIGEST), reproducible=True, **extra) -> dict:
    """RebuildResult.to_dict() as the BuildKit rebuild writes it."""
    return {"variant": "v1", "reproducible": reproducible, "digests": list(digests),
            "image_ids": list(digests), "builder": {"name": "buildkit", "buildx": "0.13.1"},
            "source_date_epoch": 1764547200, "revision": COMMIT, **extra}


def predicate(digest: str = DIGEST, revision: str | None = COMMIT, **extra) -> dict:
    return predicates.rebuilt_predicate(
        rebuilt_digest=digest, published=SUBJECT, variant="v1", revision=revision,
        repository="https://example.org/dlbase", source_date_epoch=1764547200,
        builder={"docker": "26.1.5", "buildx": "0.13.1", "buildkit": "v0.0.0+unknown"}, host_label="second",
        debian={"libc6": "2.36-9+deb12u9", "apt": "2.6.1"}, rebuilt_at="2026-12-02T05:00:00+00:00",
        builds=[digest, digest], **extra)


# ------------------------------------------------------------------------- the predicate


def test_the_predicate_records_what_the_rebuild_was():
    body = predicate()
    assert body["rebuiltDigest"] == DIGEST and body["published"] == SUBJECT
    assert body["source"] == {"repository": "https://example.org/dlbase", "revision": COMMIT, "variant": "v1"}
    assert body["sourceDateEpoch"] == 1764547200 and body["host"] == {"label": "second"}
    assert body["builder"]["buildx"] == "0.13.1" and body["builder"]["dlbase"]  # dlbase's own version added
    assert list(body["debianPackages"]) == ["apt", "libc6"]  # sorted: the same rebuild, the same bytes
    view = predicates.rebuilt_view(body)
    assert view == {"digest": DIGEST, "revision": COMMIT, "variant": "v1", "when": "2026-12-02T05:00:00+00:00",
                    "host_label": "second", "source_date_epoch": 1764547200, "builder": body["builder"],
                    "debian_packages": 2}
    assert predicates.REBUILT_TYPE in predicates.KNOWN_TYPES
    json.dumps(body)  # plain data


def test_the_view_reads_wrong_kinds_as_unknown():
    odd = {"rebuiltDigest": ["x"], "source": "abc", "sourceDateEpoch": True, "debianPackages": [1], "host": 3}
    view = predicates.rebuilt_view(odd)
    assert view["digest"] is None and view["revision"] is None and view["source_date_epoch"] is None
    assert view["debian_packages"] == 0 and view["host_label"] is None


# ------------------------------------------------------------------------- the comparison


def test_the_same_digest_is_vouched_for():
    rb = rebuilt.Rebuild.from_result(result())
    assert rb.digest == DIGEST and rb.revision == COMMIT and rb.source_date_epoch == 1764547200
    assert rebuilt.identical_digest(rb, SUBJECT, DIGEST) == DIGEST


def test_a_different_digest_is_exit_13_and_names_both():
    rb = rebuilt.Rebuild.from_result(result(digests=(OTHER, OTHER)))
    with pytest.raises(NotReproducible) as info:
        rebuilt.identical_digest(rb, SUBJECT, DIGEST)
    assert info.value.exit_code == ExitCode.NOT_REPRODUCIBLE == 13
    assert OTHER in info.value.message and DIGEST in info.value.message and "nothing was attested" in info.value.message


def test_builds_that_disagree_or_give_no_digest_vouch_for_nothing():
    with pytest.raises(NotReproducible, match="own two builds differ"):
        rebuilt.identical_digest(rebuilt.Rebuild.from_result(result(digests=(DIGEST, OTHER), reproducible=False)),
                                 SUBJECT, DIGEST)
    before = rebuilt.Rebuild.from_result({"variant": "v1", "reproducible": True, "image_ids": [DIGEST, OTHER]})
    assert before.digest is None  # a rebuild-check that reports no digests
    with pytest.raises(NotReproducible, match="gave no manifest digest"):
        rebuilt.identical_digest(before, SUBJECT, DIGEST)
    # the classic builder: file-identical builds, two digests (its image IDs)
    classic = rebuilt.Rebuild.from_result(result(digests=(DIGEST, OTHER), builder="classic"))
    assert classic.builder == {"name": "classic"} and classic.digest is None
    with pytest.raises(NotReproducible, match=r"no manifest digest both builds agree on \(builder classic\)"):
        rebuilt.identical_digest(classic, SUBJECT, DIGEST)
    assert rebuilt.Rebuild.from_result(result(source_date_epoch="soon")).source_date_epoch is None


def test_a_different_digest_says_which_debian_packages_moved():
    published = {"libc6": "2.36-9+deb12u9", "tzdata": "2025a-0+deb12u1", "gone": "1"}
    again = {"libc6": "2.36-9+deb12u10", "tzdata": "2025a-0+deb12u1", "new": "2"}
    assert rebuilt.package_changes(published, again) == [
        "debian package gone: 1 in the published image, not rebuilt",
        "debian package libc6: published 2.36-9+deb12u9, rebuilt 2.36-9+deb12u10",
        "debian package new: not in the published image, rebuilt with 2"]
    head, *lines = rebuilt.explain(published, again)
    assert "3 Debian package(s) moved" in head and "signature is checked by `dlbase trust`" in head
    assert len(lines) == 3
    [same] = rebuilt.explain(published, dict(published))
    assert "the 3 Debian packages are the versions the provenance names" in same
    [none] = rebuilt.explain(None, again)
    assert "names no Debian packages" in none


# ------------------------------------------------------------------------- the signed statement


def test_the_statement_verifies_for_its_subject_only():
    pair = keys.generate()
    blob = statements.envelope(pair, statements.statement(NAME, DIGEST, predicates.REBUILT_TYPE, predicate()))
    stmt = statements.open_envelope(pair.public, blob, DIGEST, "test")
    assert stmt["predicateType"] == predicates.REBUILT_TYPE and stmt["predicate"]["rebuiltDigest"] == DIGEST
    with pytest.raises(WrongSubject):
        statements.open_envelope(pair.public, blob, OTHER, "test")  # copied to another image


def test_only_rebuilders_and_publishers_may_make_one():
    assert evidence.may_attest(SECOND, predicates.REBUILT_TYPE) and evidence.may_attest(PUB, predicates.REBUILT_TYPE)
    assert not evidence.may_attest(GPU, predicates.REBUILT_TYPE)
    assert not evidence.may_attest(trusted(SCANNER, "n"), predicates.REBUILT_TYPE)
    assert not evidence.may_attest(SECOND, predicates.VERIFICATION_TYPE)  # a rebuilder vouches for rebuilds only
    assert not evidence.may_attest(SECOND, predicates.PROVENANCE_TYPE)


# ------------------------------------------------------------------------- the policy's decisions


def test_a_statement_counts_only_from_a_rebuilder_for_this_digest_and_commit():
    view = predicates.rebuilt_view(predicate())
    assert rebuilt.reasons_against(view, SECOND, DIGEST, COMMIT, RebuildRequirement()) == []
    [why] = rebuilt.reasons_against(view, PUB, DIGEST, COMMIT, RebuildRequirement())
    assert "not a rebuilder key of the policy" in why  # the publisher vouching for itself proves nothing
    [why] = rebuilt.reasons_against(view, SECOND, OTHER, COMMIT, None)
    assert "rebuilt digest" in why and "is not the image's" in why
    [why] = rebuilt.reasons_against(view, SECOND, DIGEST, "f" * 40, None)
    assert why == f"rebuilt from {COMMIT[:12]}, the provenance names {'f' * 12}"
    assert rebuilt.reasons_against(view, SECOND, DIGEST, None, None) == []  # no provenance: nothing to compare
    [why] = rebuilt.reasons_against(predicates.rebuilt_view(predicate(revision=None)), SECOND, DIGEST, None, None)
    assert why == "it names no source revision"
    [why] = rebuilt.reasons_against(view, OTHER_ORG, DIGEST, COMMIT, RebuildRequirement(rebuilders=("second",)))
    assert why == "rebuilder other-org is not one of second"


def test_the_requirement_counts_distinct_rebuilder_keys():
    pol = TrustPolicy(keys=(PUB, SECOND, OTHER_ORG), rebuilt=RebuildRequirement(count=2))
    one = {"signer": SECOND, "unmet": []}
    assert rebuilt.unmet(pol, [one, one]) == "1 of 2 required rebuilder key(s) vouch for it"
    assert rebuilt.unmet(pol, [one, {"signer": OTHER_ORG, "unmet": []}]) is None
    assert rebuilt.unmet(pol, [one, {"signer": OTHER_ORG, "unmet": ["x"]}]) is not None
    assert rebuilt.unmet(TrustPolicy(keys=(PUB,)), []) is None  # not required: nothing to meet
    lonely = TrustPolicy(keys=(PUB,), rebuilt=RebuildRequirement())
    assert "names no rebuilder key" in rebuilt.unmet(lonely, [])
    assert "2 rebuilt-identical statements by distinct rebuilder keys" in pol.describe()
    with pytest.raises(InvalidInput):
        RebuildRequirement(count=0)


def test_newest_first_puts_undated_last():
    rows = [{"predicate": {"when": w}} for w in (None, "2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z")]
    assert [r["predicate"]["when"] for r in rebuilt.newest_first(rows)] == \
        ["2026-06-01T00:00:00Z", "2026-01-01T00:00:00Z", None]


# ------------------------------------------------------------------------- the policy file and flags


@pytest.fixture(scope="module")
def pubs(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("pubs")
    for name in ("release", "second", "other"):
        (base / f"{name}.pub").write_bytes(keys.public_pem(keys.generate()))
    return base


HEAD = "publishers:\n  - key: release.pub\n"
REBUILDERS = "rebuilders:\n  - label: second\n    key: second.pub\n  - label: other-org\n    key: other.pub\n"


def test_a_policy_file_with_rebuilders_and_the_requirement(pubs):
    path = pubs / "policy.yaml"
    path.write_text(HEAD + REBUILDERS + "require:\n  rebuilt_identical: true\n")
    pol = policyfile.load(path)
    assert pol.rebuilt == RebuildRequirement()
    assert [k.label_for(REBUILDER) for k in pol.of_role(REBUILDER)] == ["second", "other-org"]
    assert not any(k.has(VERIFIER) or k.has(PUBLISHER) for k in pol.of_role(REBUILDER))
    path.write_text(HEAD + REBUILDERS + "require:\n  rebuilt_identical: {count: 2, rebuilders: [second, other-org]}\n")
    assert policyfile.load(path).rebuilt == RebuildRequirement(count=2, rebuilders=("second", "other-org"))
    path.write_text(HEAD + REBUILDERS + "require:\n  rebuilt_identical: false\n")
    assert policyfile.load(path).rebuilt is None
    path.write_text(HEAD + REBUILDERS)
    assert policyfile.load(path).rebuilt is None  # listed rebuilders alone require nothing


def test_flags_add_rebuilders_and_the_requirement(pubs):
    pol = policyfile.from_cli(None, (str(pubs / "release.pub"),), (), require_gpu_verified=False, gpu_arch=None,
                              min_driver=None, rebuilder_specs=(f"second={pubs / 'second.pub'}",),
                              require_rebuilt=True)
    assert pol.rebuilt == RebuildRequirement() and [k.label for k in pol.of_role(REBUILDER)] == ["second"]
    path = pubs / "strict.yaml"
    path.write_text(HEAD + REBUILDERS + "require:\n  rebuilt_identical: {count: 2}\n")
    kept = policyfile.from_cli(path, (), (), require_gpu_verified=False, gpu_arch=None, min_driver=None,
                               require_rebuilt=True)
    assert kept.rebuilt == RebuildRequirement(count=2)  # the flag never relaxes the file
    with pytest.raises(InvalidInput, match="--rebuilder 'second.pub' is not LABEL=PUB"):
        policyfile.from_cli(None, (str(pubs / "release.pub"),), (), require_gpu_verified=False, gpu_arch=None,
                            min_driver=None, rebuilder_specs=("second.pub",))


BAD = [
    (HEAD + "rebuilders:\n  - key: second.pub\n", 4, "a rebuilder needs a label (the second builder"),
    (HEAD + "require:\n  rebuilt_identical: true\n", 4, "require.rebuilt_identical needs rebuilder keys"),
    (HEAD + REBUILDERS + "require:\n  rebuilt_identical: yes please\n", 9, "must be true, false or a mapping"),
    (HEAD + REBUILDERS + "require:\n  rebuilt_identical: {count: 3}\n", 9, "count 3 is more than the 2"),
    (HEAD + REBUILDERS + "require:\n  rebuilt_identical: {rebuilders: [nobody]}\n", 9, "'nobody' is not a label"),
    (HEAD + REBUILDERS + "require:\n  rebuilt_identical: {min: 1}\n", 9,
     "unknown key 'min' in require.rebuilt_identical"),
    (HEAD + "rebuilder:\n  - label: s\n    key: second.pub\n", 3, "unknown key 'rebuilder'"),
]


@pytest.mark.parametrize("text,line,needle", BAD, ids=[b[2] for b in BAD])
def test_a_bad_rebuilders_section_names_file_and_line(pubs, text, line, needle):
    path = pubs / "bad.yaml"
    path.write_text(text)
    with pytest.raises(MatrixError) as info:
        policyfile.load(path)
    assert info.value.exit_code == ExitCode.INVALID_INPUT
    assert needle in info.value.message and info.value.message.startswith(f"{path}:{line}"), info.value.message


# ------------------------------------------------------------------------- the trust table


def test_trust_table_shows_who_rebuilt_which_revision_and_when(capsys):
    signer = {"roles": [REBUILDER], "label": "second", "fingerprint": SECOND.fingerprint}
    row = {**verdict.rebuild_summary(predicates.rebuilt_view(predicate())), "signer": signer,
           "meets_policy": True, "unmet": []}
    body = {"signature": {"identity": NAME, "tag": None, "key": PUB.fingerprint, "key_label": "release"},
            "built_from": None, "sbom": None, "verifications": [], "other_attestations": [], "ignored": [],
            "scan": None, "vex": None, "rebuilds": [row, {**row, "meets_policy": False,
                                                         "unmet": ["not the image's"]}],
            "policy": {"rules": "x"}, "pinned": SUBJECT}
    from dlbase.cli import ui

    capsys.readouterr()
    ui.out._width = 250
    _trustview.print_table(body)
    out = capsys.readouterr().out
    assert f"rebuilt identical: second" in out and f"revision {COMMIT[:12]}; 2026-12-02T05:00:00+00:00" in out
    assert "buildx 0.13.1" in out and f"by rebuilder second {SECOND.fingerprint[:19]}" in out
    assert "docker 26.1.5, buildx 0.13.1, buildkit v0.0.0+unknown" in out and "policy: not the image's" in out, out


# ------------------------------------------------------------------------- provenance and dpkg


BUILD_TYPE = "https://dlbase.dev/build/buildkit/v1"


def test_provenance_names_each_debian_package_by_purl():
    debs = [("libc6", "2.36-9+deb12u9", "amd64"), ("apt", "2.6.1", "amd64"), ("apt", "2.6.1", "amd64")]
    prov = predicates.provenance_predicate(labels={}, image_id=DIGEST, created=None, build_seconds=None,
                                           dockerfile=None, lock=None, engine_version={}, debs=debs,
                                           distro="debian-12", build_type=BUILD_TYPE)
    deps = prov["buildDefinition"]["resolvedDependencies"]
    assert [d["uri"] for d in deps] == ["pkg:deb/debian/apt@2.6.1?arch=amd64&distro=debian-12",
                                        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u9?arch=amd64&distro=debian-12"]
    assert predicates.debian_versions(deps + [{"uri": "file:x", "name": "lock"}]) == \
        {"apt": "2.6.1", "libc6": "2.36-9+deb12u9"}
    assert predicates.provenance_predicate(labels={}, image_id=DIGEST, created=None, build_seconds=None,
                                           dockerfile=None, lock=None, build_type=BUILD_TYPE,
                                           engine_version={})["buildDefinition"]["resolvedDependencies"] == []


class _Files:
    """An engine that has one file, or none (Missing), for the dpkg status reader."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.asked = files, []

    def read_image_file(self, image, path, labels=None):
        self.asked.append((image, path, labels))
        if path not in self.files:
            raise Missing(f"no {path} in {image}")
        return self.files[path]


STATUS = (b"Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u9\nArchitecture: amd64\n"
          b"Source: glibc\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: amd64\n\n"
          b"Package: tzdata\nStatus: install ok installed\nVersion: 2025b-0+deb12u1\nArchitecture: all\n")


def test_debian_packages_come_from_the_dpkg_status_through_the_one_reader():
    engine = _Files({debian.DPKG_STATUS: STATUS})
    assert debian.debian_packages(engine, "img") == [("libc6", "2.36-9+deb12u9", "amd64"),
                                                     ("tzdata", "2025b-0+deb12u1", "all")]
    assert engine.asked == [("img", "/var/lib/dpkg/status", {"dlbase.purpose": "sbom"})]
    assert debian.debian_packages(_Files({}), "img") == []  # no dpkg: no packages, not an error


def test_builder_versions_read_what_there_is():
    class Daemon:
        def version(self):
            return {"Version": "26.1.5", "ApiVersion": "1.45"}

    outputs = {"version": (0, "github.com/docker/buildx 0.13.1+ds1 0.13.1+ds1-3\n"),
               "inspect": (0, "Name: default\nBuildKit version: v0.13.2\n")}
    found = hostfacts.builder_versions(Daemon(), run=lambda cmd: outputs[cmd[2]], which=lambda _n: "/usr/bin/docker")
    assert found == {"docker": "26.1.5", "dockerApi": "1.45", "buildx": "0.13.1+ds1", "buildkit": "v0.13.2"}
    found = hostfacts.builder_versions(Daemon(), run=lambda cmd: (1, "unknown command"), which=lambda _n: "/x/docker")
    assert found["buildx"] is None and found["buildkit"] is None and found["docker"] == "26.1.5"


# ------------------------------------------------------------------------- the verb's bad input


def test_rebuild_check_attest_refuses_bad_input_before_building(cli, tmp_path, monkeypatch):
    res = cli("rebuild-check", "--key", "k.key", "--json")
    assert res.code == 2 and "--key goes with --attest" in res.err + res.out
    res = cli("rebuild-check", "--attest", SUBJECT, "--json")
    assert res.code == 2 and "--attest needs --key" in res.json()["message"]
    res = cli("rebuild-check", "--attest", "dlbase/pytorch:2.6", "--key", "k.key", "--json")
    assert res.code == 2 and "names no registry host" in res.json()["message"]
    res = cli("rebuild-check", "--attest", SUBJECT, "--key", str(tmp_path / "absent.key"), "--json")
    assert res.code != 0 and "absent.key" in res.json()["message"]


def test_key_generate_makes_a_rebuilder_key_with_its_policy_entry(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("DLBASE_SIGNING_PASSWORD", "second builder")
    res = cli("key", "generate", "--role", "rebuilder", "--out", str(tmp_path / "a"), "--json")
    assert res.code == 2 and "--role rebuilder needs --label (the second builder" in res.json()["message"]
    res = cli("key", "generate", "--role", "rebuilder", "--label", "second", "--out", str(tmp_path / "b"), "--json")
    assert res.code == 0, res.err
    assert res.json()["policy_entry"].startswith("rebuilders:\n  - label: second\n")
    pem = Path(res.json()["public_key"]).read_bytes()
    assert base64.b64decode(b"".join(pem.splitlines()[1:-1]))  # a real public key was written


def test_the_attest_wrapper_forwards_every_event_and_removes_only_untagged_rebuild_images():
    """Build events name the images kept for the statement; the wheelhouse's fill events
    (no ``kind``) pass through; cleanup spares an image a tag names and one that was on the
    daemon before the rebuild (the published image `dlbase build` made here, rebuilt)."""
    from dlbase.build.wheelhouse import FillEvent
    from dlbase.cli.commands._rebuildattest import Attesting
    from dlbase.engine import BuildEvent
    from dlbase.engine.images import Images

    earlier = "sha256:" + "ab" * 32

    class Daemon:
        removed: list[str] = []
        remove_made = Images.remove_made  # the engine's own rule, on this stand-in's answers

        def image_ids(self):
            return frozenset({earlier})

        def image_exists(self, image_id):
            return True

        def _has_tags(self, image_id):
            return image_id == DIGEST

        @property
        def _api(self):
            return self

        def remove_image(self, image_id, force=False):
            self.removed.append(image_id)

    seen, daemon = [], Daemon()
    fill = FillEvent.__new__(FillEvent)
    with Attesting(object(), daemon, keep=False, host_label=None, on_event=seen.append, say=print) as attesting:
        assert attesting.keep is True  # kept while the statement is made
        for event in (fill, BuildEvent("done", image_id=OTHER), BuildEvent("done", image_id=DIGEST),
                      BuildEvent("done", image_id=earlier), BuildEvent("step", text="RUN x")):
            attesting.on_event(event)
    assert len(seen) == 5 and daemon.removed == [OTHER]
    passthrough = Attesting(None, daemon, keep=False, host_label=None, on_event=seen.append, say=print)
    assert passthrough.keep is False and passthrough.attach({"reproducible": True}) == {"reproducible": True}
