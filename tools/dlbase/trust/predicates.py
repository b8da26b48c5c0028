"""The predicates dlbase attaches to an image, as plain data.

- SBOM: CycloneDX 1.5 with the image's Python distributions *and* its dpkg packages
  (read from inside the image), predicate type ``https://cyclonedx.org/bom``;
- provenance: SLSA v1 (``https://slsa.dev/provenance/v1``) from what the image says
  about itself (labels written at build time: commit, variant, lock hash, base and its
  digest), the lock inside the image, the rendered Dockerfile at the image's commit
  (:mod:`sources`) and the engine that built it;
- verification: in-toto's test-result predicate
  (``https://in-toto.io/attestation/test-result/v0.1``: ``result`` pass/fail, the suites
  that ran as ``configuration``, ``passedTests``/``failedTests``) with dlbase's facts
  (host, GPUs, driver, counts, partial, forced...) in its extension field ``dlbase``;
  documented in docs/trust-operators.md. Verifications written before carry dlbase's
  own type ``https://dlbase.dev/attestation/verification/v1`` (the same facts, flat); both
  are read, through :func:`verification_view`;
- rebuilt identical: dlbase's own ``https://dlbase.dev/rebuilt-identical/v0.1``, a second
  builder's word that it rebuilt the image from its commit and got the same manifest
  digest (:func:`rebuilt_predicate`; documented in docs/trust-operators.md).

Only functions of their inputs here (and of the suite's files, for :func:`suite_hash`):
what must be asked of the host or the image (its GPUs, its Debian packages) is gathered
by :mod:`dlbase.verify.hostfacts` and :mod:`dlbase.image.debian` and handed in, so the documents can be built and tested
without a daemon.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from dlbase import __version__, suites
from dlbase.trust import sbom
from dlbase.verify.suite_digest import folder_files, suite_digest
from dlbase.trust.sources import BuiltFrom, Material
from dlbase.vuln.attestation import OPENVEX_TYPE, VULN_TYPE
from dlbase.define import labels as image_labels

SBOM_TYPE = "https://cyclonedx.org/bom"
PROVENANCE_TYPE = "https://slsa.dev/provenance/v1"
VERIFICATION_TYPE = "https://in-toto.io/attestation/test-result/v0.1"
LEGACY_VERIFICATION_TYPE = "https://dlbase.dev/attestation/verification/v1"
VERIFICATION_TYPES = (VERIFICATION_TYPE, LEGACY_VERIFICATION_TYPE)
REBUILT_TYPE = "https://dlbase.dev/rebuilt-identical/v0.1"
KNOWN_TYPES = (SBOM_TYPE, PROVENANCE_TYPE, *VERIFICATION_TYPES, VULN_TYPE, OPENVEX_TYPE,  # scan, VEX: dlbase.vuln
               REBUILT_TYPE)
EXTENSION = "dlbase"  # test-result's extension field that holds dlbase's facts
TEST_RESULT_FIELDS = ("result", "configuration", "url", "passedTests", "warnedTests", "failedTests")
BUILDER_ID = "https://dlbase.dev/builder/dlbase"
#: The suites a verification ran, by the names the record gives them (their place in the
#: repository), found through dlbase.suites (a wheel holds them too, a checkout is not needed).
SUITE_DIRS = {"tests/image": suites.image_dir, "tests/infra": suites.infra_dir}


def sbom_predicate(*, image_id: str, name: str, python: dict[str, str], debs: list[tuple[str, str, str]],
                   built: BuiltFrom, labels: dict[str, str]) -> dict:
    """The SBOM: hashes from the lock inside the image, purls of the image's own distribution."""
    lock_text = built.lock.content.decode("utf-8", "replace") if built.lock else None
    document = sbom.cyclonedx(image_id=image_id, image_name=name, packages=python, lock_text=lock_text,
                              properties={"dlbase:variant": str(labels.get(image_labels.VARIANT)),
                                          "dlbase:lock-hash": str(labels.get(image_labels.LOCK_HASH)),
                                          "dlbase:distro": str(built.distro)},
                              timestamp=labels.get(image_labels.CREATED))
    return sbom.add_debian(document, debs, distro=built.distro, vendor=built.os_id or "debian")


def provenance_predicate(*, labels: dict[str, str], image_id: str, created: str | None,
                         build_seconds: float | None, dockerfile: Material | None, lock: Material | None,
                         engine_version: dict, build_type: str, debs: list[tuple[str, str, str]] = (),
                         distro: str | None = None, vendor: str = "debian") -> dict:
    """SLSA v1 provenance from the image's own build-time labels and the build's inputs
    (the Dockerfile at the image's commit, the lock inside the image: :mod:`sources`).

    ``build_type`` names the builder that made the image
    (:func:`dlbase.engine.builderchoice.build_type`), read by the caller from the image.

    ``debs`` (name, version, arch) are the image's installed Debian packages, from its dpkg
    status: the exact versions the mirror served to the apt layer (and the base), each a
    resolved dependency named by its purl (:func:`debian_dependencies`), so a rebuild on a
    later mirror state can say which package moved instead of only "different".
    """
    finished = created
    started = None
    if created and build_seconds:
        try:
            end = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
            started = (end - dt.timedelta(seconds=float(build_seconds))).isoformat(timespec="seconds")
        except ValueError:
            started = None
    deps = []
    base_digest = labels.get(image_labels.BASE_DIGEST)
    if labels.get(image_labels.BASE_NAME):
        dep = {"uri": labels[image_labels.BASE_NAME], "name": "base image"}
        if base_digest and base_digest.startswith("sha256:"):
            dep["digest"] = {"sha256": base_digest.split(":", 1)[1]}
        deps.append(dep)
    for label, material in (("rendered Dockerfile", dockerfile), ("requirements.lock", lock)):
        if material is not None:
            deps.append({"uri": f"file:{material.uri}", "name": label, "digest": {"sha256": material.sha256}})
    deps.extend(debian_dependencies(debs, distro=distro, vendor=vendor))
    return {
        "buildDefinition": {
            "buildType": build_type,
            "externalParameters": {
                "repository": labels.get(image_labels.SOURCE),
                "commit": labels.get(image_labels.REVISION),
                "variant": labels.get(image_labels.VARIANT),
                "lockHash": labels.get(image_labels.LOCK_HASH),
            },
            "internalParameters": {"baseImage": labels.get(image_labels.BASE_NAME),
                                   "baseDigest": base_digest, "imageId": image_id},
            "resolvedDependencies": deps,
        },
        "runDetails": {
            "builder": {"id": BUILDER_ID,
                        "version": {"dlbase": __version__, "docker": str(engine_version.get("Version")),
                                    "dockerApi": str(engine_version.get("ApiVersion"))}},
            "metadata": {"invocationId": f"dlbase-build:{image_id}", "startedOn": started, "finishedOn": finished},
        },
    }


def debian_dependencies(debs: list[tuple[str, str, str]], *, distro: str | None = None,
                        vendor: str = "debian") -> list[dict]:
    """One SLSA resource descriptor per installed Debian package (sorted, deduplicated):
    ``uri`` its purl (``pkg:deb/debian/NAME@VERSION?arch=..&distro=..``, the SBOM's spelling),
    ``name`` the package; the version is in the purl, which is what a later rebuild compares."""
    return [{"uri": sbom.deb_purl(name, version, arch, distro, vendor), "name": name,
             "annotations": {"packageManager": "dpkg", "version": version, "arch": arch}}
            for name, version, arch in sorted(set(debs))]


def debian_versions(dependencies: list[dict]) -> dict[str, str]:
    """{package: version} of the Debian packages among a provenance's resolved dependencies
    (the inverse of :func:`debian_dependencies`; other dependencies are skipped)."""
    found = {}
    for dep in dependencies:
        notes = dep.get("annotations") if isinstance(dep, dict) else None
        if (isinstance(notes, dict) and notes.get("packageManager") == "dpkg"
                and str(dep.get("uri", "")).startswith("pkg:deb/")):
            found[str(dep.get("name"))] = str(notes.get("version"))
    return found


def suite_hash(dirs: dict[str, Path] | None = None) -> dict:
    """sha256 over the installed verify suites (name/path + content, sorted). Used only for
    a record written before verify kept the digests of the suites that actually ran.
    ``dirs``: {name: folder}, by default the installed suites (:data:`SUITE_DIRS`)."""
    dirs = dirs if dirs is not None else {name: where() for name, where in SUITE_DIRS.items()}
    files = {}
    for name, base in dirs.items():
        if base.is_dir():
            files.update({f"{name}/{k}": v for k, v in folder_files(base).items()})
    return {**suite_digest(files), "dirs": list(dirs)}


def suites_summary(suites: dict[str, dict]) -> dict:
    """One digest over the suites that ran (``{name: suite_digest}``), for the predicate's ``suite``."""
    h = hashlib.sha256()
    for name in sorted(suites):
        h.update(name.encode() + b"\0" + suites[name]["sha256"].encode() + b"\0")
    return {"sha256": h.hexdigest(), "files": sum(int(s.get("files") or 0) for s in suites.values()),
            "dirs": sorted(suites)}


def verification_predicate(*, passed: bool, verified_at: str | None, counts: dict, failed_checks: list[str],
                           require_gpu: bool, partial: bool, gpus_used: bool | None, suites: dict[str, dict],
                           host: dict | None, image: str, source: str, passed_checks: list[str] | None = None,
                           forced: bool = False, simulated: bool = False,
                           note: str | None = None) -> dict:
    """in-toto test-result v0.1 of one verify run, with dlbase's facts in ``dlbase``.

    ``suites`` maps the suites that ran (``tests/infra`` on the host, the image's own
    ``/opt/dlbase/tests``) to their :func:`suite_digest`: test-result's ``configuration``.
    ``host`` is what the host said when verify ran (kept in its record), not at attest time.
    ``simulated``: a record a test wrote by hand; it never meets a policy.
    """
    facts = {
        "verifiedAt": verified_at,
        "attestedAt": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "requireGpu": bool(require_gpu),
        "gpusUsed": gpus_used,
        "partial": bool(partial),
        "forced": bool(forced),
        "simulated": bool(simulated),  # a record a test wrote by hand: it never meets a policy
        "counts": counts,
        "suite": suites_summary(suites),
        "host": host,
        "image": image,
        "source": source,  # "dlbase verify --attest" | "dlbase push (local record)"
        "verifier": {"name": "dlbase", "version": __version__},
        "note": note,
    }
    body: dict = {
        "result": "pass" if passed else "fail",
        "configuration": [{"name": name, "digest": {"sha256": d["sha256"]}} for name, d in sorted(suites.items())],
        "failedTests": list(failed_checks),
        EXTENSION: facts,
    }
    if passed_checks is not None:
        body["passedTests"] = list(passed_checks)
    return body


def verification_view(predicate_type: str, predicate: dict) -> dict:
    """dlbase's facts of one verification (``result`` passed/failed, ``host``, ``requireGpu``,
    ``partial``, ``failedChecks``...), whichever predicate type carries them.

    A test-result predicate without dlbase's extension field (another tool's test run) is
    read from its own fields: without a ``host`` it never meets a GPU requirement.
    """
    if predicate_type != VERIFICATION_TYPE:
        return predicate
    ext = predicate.get(EXTENSION)
    facts = dict(ext) if isinstance(ext, dict) else {k: v for k, v in predicate.items() if k not in TEST_RESULT_FIELDS}
    result = predicate.get("result")
    failed = predicate.get("failedTests")
    if not isinstance(failed, list):
        failed = facts.get("failedChecks") if isinstance(facts.get("failedChecks"), list) else []
    return {**facts, "result": {"pass": "passed", "fail": "failed"}.get(result, str(result)),
            "failedChecks": [str(f) for f in failed]}


def rebuilt_predicate(*, rebuilt_digest: str, published: str, variant: str | None, revision: str | None,
                      repository: str | None, source_date_epoch: int | None, builder: dict,
                      host_label: str | None, debian: dict[str, str], rebuilt_at: str,
                      builds: list[str]) -> dict:
    """A second builder's statement that it rebuilt ``published`` from ``revision`` and got
    ``rebuilt_digest`` (the subject's digest: :mod:`dlbase.trust.rebuilt` refuses to make
    one otherwise).

    ``builds``: the manifest digests of the rebuild's own two builds (they agreed);
    ``builder``: BuildKit, buildx and Docker versions as the rebuild read them; ``debian``:
    {package: version} from the rebuilt image's dpkg status, the mirror state it met.
    """
    return {
        "rebuiltDigest": rebuilt_digest,
        "published": published,
        "source": {"repository": repository, "revision": revision, "variant": variant},
        "sourceDateEpoch": source_date_epoch,
        "builder": {**builder, "dlbase": __version__},
        "host": {"label": host_label},
        "rebuiltAt": rebuilt_at,
        "builds": list(builds),
        "debianPackages": dict(sorted(debian.items())),
    }


def rebuilt_view(predicate: dict) -> dict:
    """The facts of one rebuilt-identical predicate that `dlbase trust` shows and a policy
    checks; fields of the wrong kind read as unknown (None), never as a match."""
    source = predicate.get("source") if isinstance(predicate.get("source"), dict) else {}
    host = predicate.get("host") if isinstance(predicate.get("host"), dict) else {}
    builder = predicate.get("builder") if isinstance(predicate.get("builder"), dict) else {}
    debian = predicate.get("debianPackages") if isinstance(predicate.get("debianPackages"), dict) else {}
    digest = predicate.get("rebuiltDigest")
    epoch = predicate.get("sourceDateEpoch")
    return {"digest": digest if isinstance(digest, str) else None,
            "revision": source.get("revision") if isinstance(source.get("revision"), str) else None,
            "variant": source.get("variant"),
            "when": predicate.get("rebuiltAt") if isinstance(predicate.get("rebuiltAt"), str) else None,
            "host_label": host.get("label"),
            "source_date_epoch": epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None,
            "builder": {str(k): v for k, v in builder.items()},
            "debian_packages": len(debian)}
