"""Gathering the predicates for `push --sign`, `verify --attest` and `rebuild-check --attest`,
then attaching them.

Push attaches the SBOM, the provenance and the verification record that let the image
through the gate, then (with a vulnerability database) a scan of the image as cosign's
vuln predicate and, whenever the project's VEX has statements about the image, those as
an OpenVEX document; without a database it says that no scan was attached. A GPU host's
`verify --attest` attaches only its own verification; `scan --attest` only a fresh scan.
Push signs with the publisher's key; a GPU host signs with its own verifier key (made on
that host by `dlbase key generate --role verifier`); a second builder with its rebuilder key
(:func:`for_rebuild`). All go through :func:`evidence.attach`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Callable

from dlbase.core import documents, imageref, purls
from dlbase.core.errors import DlbaseError, NotReproducible
from dlbase.image import debian, local_image
from dlbase.vuln import attestation as vuln_attestation
from dlbase.vuln import image_scan, vex
from dlbase.vuln.db import ENV_VAR as VULN_DB_ENV
from dlbase.vuln.db import Database
from dlbase.verify import hostfacts, records
from dlbase.engine import Engine, builderchoice
from dlbase.define.project import Project
from dlbase.registry.client import RegistryClient
from dlbase.trust import contents as image_contents
from dlbase.trust import evidence, keys, predicates, rebuilt, statements, store
from dlbase.define import labels as image_labels


NO_DATABASE = (f"no vulnerability database (--scan-db DIR or ${VULN_DB_ENV}): no scan was attached; "
               "attach one later with `dlbase scan REF@DIGEST --attest --key KEY --db DIR`")


@dataclass(frozen=True)
class ScanInputs:
    """What push scans with: the database (None: no scan, and the push says so) and the
    project's VEX statements (loaded and checked before anything is pushed)."""

    database: Database | None
    statements: list[vex.Statement] = field(default_factory=list)


def for_push(project: Project, engine: Engine, client: RegistryClient, subject: evidence.Subject,
             pair: keys.KeyPair, *, image_id: str, facts: dict, tags: tuple[str, ...] = (),
             host_label: str | None = None, scan: ScanInputs | None = None,
             contents: image_contents.ImageContents | None = None,
             say: Callable[[str], None] = lambda _m: None) -> dict:
    """Sign the pushed digest (one signature naming each pushed tag) and attach SBOM,
    provenance, the local verification record, and the scan and VEX (:func:`_scan_and_vex`).

    ``contents``: the image's inventory and SBOM as push read them (read here otherwise);
    the SBOM attested is that document, the scan matches that inventory. The build's inputs
    come from the image and its commit (:mod:`sources`), the verification's suites and host
    facts from the record verify wrote when it ran.
    """
    info = engine.inspect_image(image_id)
    labels = imageref.labels_of(info)
    contents = contents or image_contents.read(project, engine, image_id, subject.name, say)
    built, debs, sbom = contents.built, contents.inventory.debian_packages(), contents.sbom
    provenance = predicates.provenance_predicate(
        labels=labels, image_id=image_id, created=info.get("Created"), build_seconds=facts.get("build_seconds"),
        dockerfile=built.dockerfile, lock=built.lock, engine_version=_engine_version(engine),
        build_type=builderchoice.build_type(builderchoice.built_by(engine.image_history(image_id))), debs=debs, distro=built.distro, vendor=built.os_id or "debian")
    attestations = [(predicates.SBOM_TYPE, sbom), (predicates.PROVENANCE_TYPE, provenance)]
    record = records.lookup(project, image_id)
    if record is not None:
        attestations.append((predicates.VERIFICATION_TYPE, _from_record(project, record, host_label, subject)))
    found, scanned = _scan_and_vex(project, engine, subject, image_id, scan or ScanInputs(None), tags, say,
                                   contents)
    attestations.extend(found)
    result = evidence.attach(client, subject, pair, sign=True, attestations=attestations, tags=tags, on_step=say)
    result["verification_attached"] = record is not None
    result["scan"] = scanned
    result["sbom_components"] = {"python": len(contents.inventory.python), "debian": len(debs)}
    result["built_from"] = {"lock": built.lock is not None, "dockerfile": built.dockerfile is not None,
                            "distro": built.distro}
    return result


def _scan_and_vex(project: Project, engine: Engine, subject: evidence.Subject, image_id: str, inputs: ScanInputs,
                  tags: tuple[str, ...], say: Callable[[str], None], contents: image_contents.ImageContents
                  ) -> tuple[list[tuple[str, dict]], dict]:
    """The scan (only with a database) of the inventory push read, and the OpenVEX document of
    the statements about this image (with or without one: VEX is the team's word, not the
    database's) by purl: the pushed digest's ``pkg:oci`` purl and the SBOM's package purls.
    A summary says what was attached and, when no scan was, why."""
    refs = (subject.reference, *(f"{subject.name}:{t}" for t in tags))
    found: list[tuple[str, dict]] = []
    if inputs.database is None:
        say(NO_DATABASE)
        summary: dict = {"attached": False, "reason": NO_DATABASE}
        located = local_image.locate(project, engine, image_id)
    else:
        say("scanning the image's packages for known vulnerabilities")
        report, located = image_scan.scan(project, engine, image_id, inputs.database, statements=inputs.statements,
                                          refs=refs, digests=(subject.digest,), say=say,
                                          inventory=contents.inventory if contents.probed else None)
        found.append((vuln_attestation.VULN_TYPE,
                      vuln_attestation.vuln_predicate(report, parameters=["dlbase", "push", "--sign"])))
        body = report.to_dict()
        summary = {"attached": True, "counts": body["counts"], "vex_applied": len(body["vex"]),
                   "database_newest": body["database"]["newest_modified"], "stale": body["database"]["stale"],
                   "not_covered": body["not_covered"], "lock_agrees": body["lock"]["agrees"]}
    target = image_scan.target(project, located, refs=refs, digests=(subject.digest,))
    document = vuln_attestation.vex_document(inputs.statements, target, purls.oci(subject.name, subject.digest),
                                             contents.component_purls())
    if document is not None:
        found.append((vuln_attestation.OPENVEX_TYPE, document))
    summary["vex_statements"] = len(document["statements"]) if document else 0
    return found, summary


def _from_record(project: Project, record: dict, host_label: str | None, subject: evidence.Subject) -> dict:
    """The verification predicate of a local record, with the facts it kept from its run.

    A record from before records kept them names the checkout's suites and no host facts
    (only the label): the honest reading of "unknown", which meets no GPU requirement.
    """
    summary = record.get("summary") or {}
    suites = record.get("suites") or {"checkout tests/image + tests/infra": predicates.suite_hash()}
    host = {**(record.get("host") or {}), "label": host_label}  # no facts kept: the label alone
    notes = []
    if summary.get("simulated"):
        notes.append(f"simulated record: {summary.get('simulated')}")
    if record.get("host") is None:
        notes.append("the record predates kept host facts")
    return predicates.verification_predicate(
        passed=bool(record.get("passed")), verified_at=record.get("verified_at"),
        counts=summary.get("counts") or {}, failed_checks=summary.get("failed_checks") or [],
        passed_checks=summary.get("passed_checks"), require_gpu=bool(record.get("require_gpu")),
        partial=bool(summary.get("partial")), gpus_used=summary.get("gpus"), suites=suites, host=host,
        image=subject.reference, source="dlbase push (the local verification record that let the image through)",
        simulated=bool(summary.get("simulated")), note="; ".join(notes) or None)


def for_verify(project: Project, engine: Engine, client: RegistryClient, subject: evidence.Subject,
               pair: keys.KeyPair, report, *, host_label: str | None,
               say: Callable[[str], None] = lambda _m: None) -> dict:
    """Append this host's verification result (a VerifyReport) to the image's evidence,
    with the suites that ran and the host facts taken during the run."""
    host = {**report.host, "label": host_label} if report.host is not None else None
    predicate = predicates.verification_predicate(
        passed=report.passed, verified_at=report.started_at, counts=report.counts(),
        failed_checks=report.failed_checks, passed_checks=report.passed_checks, require_gpu=report.require_gpu,
        partial=report.partial, gpus_used=report.gpus, suites=report.suites, host=host,
        image=subject.reference, source="dlbase verify --attest")
    return evidence.attach(client, subject, pair, sign=False,
                           attestations=[(predicates.VERIFICATION_TYPE, predicate)], on_step=say)


def for_rebuild(engine: Engine, client: RegistryClient, subject: evidence.Subject, pair: keys.KeyPair,
                rebuild: rebuilt.Rebuild, *, host_label: str | None,
                say: Callable[[str], None] = lambda _m: None) -> dict:
    """Append a rebuilt-identical statement to ``subject`` when ``rebuild``'s digest is
    its digest (NotReproducible, exit 13, and nothing attached otherwise).

    The Debian packages and the labels (revision, repository) are read from the rebuilt
    image, which is the published one (same digest); the builder's versions from this host,
    under what the rebuild itself recorded."""
    try:
        digest = rebuilt.identical_digest(rebuild, subject.reference, subject.digest)
    except NotReproducible as exc:
        if rebuild.digest is not None and rebuild.image_ids:  # a rebuilt image to compare: say what moved
            debs = debian.debian_packages(engine, rebuild.image_ids[0], labels={"dlbase.purpose": "rebuild-attest"})
            exc.details = rebuilt.explain(_published_debian(client, subject), {n: v for n, v, _a in debs})
        raise
    image = rebuild.image_ids[0] if rebuild.image_ids else digest
    labels = imageref.labels_of(engine.inspect_image(image))
    say("reading Debian packages from the rebuilt image (dpkg status)")
    debs = debian.debian_packages(engine, image, labels={"dlbase.purpose": "rebuild-attest"})
    predicate = predicates.rebuilt_predicate(
        rebuilt_digest=digest, published=subject.reference, variant=rebuild.variant or labels.get(image_labels.VARIANT),
        revision=rebuild.revision or labels.get(rebuilt.REVISION_LABEL),
        repository=labels.get(image_labels.SOURCE), source_date_epoch=rebuild.source_date_epoch,
        builder={**hostfacts.builder_versions(engine), **rebuild.builder}, host_label=host_label,
        debian={name: version for name, version, _arch in debs}, rebuilt_at=_now(), builds=list(rebuild.builds))
    result = evidence.attach(client, subject, pair, sign=False,
                             attestations=[(predicates.REBUILT_TYPE, predicate)], on_step=say)
    return {**result, "rebuilt_digest": digest, "revision": predicate["source"]["revision"],
            "debian_packages": len(predicate["debianPackages"])}


def _published_debian(client: RegistryClient, subject: evidence.Subject) -> dict[str, str] | None:
    """{package: version} from the newest provenance stored with ``subject`` that is about
    its digest and names Debian packages; None when there is none. Read for a diagnosis
    only (which packages moved): no signature is checked, and nothing is decided by it."""
    found = None
    try:
        layers = store.ArtifactStore(client, subject.repository).attestations(subject.digest)
    except DlbaseError:
        return None
    hexdigest = subject.digest.partition(":")[2]
    for layer in layers:
        if layer.annotations.get(store.PREDICATE_ANNOTATION) != predicates.PROVENANCE_TYPE:
            continue
        try:
            stmt = documents.parse_json(statements.envelope_payload(layer.blob), "envelope",
                                        documents.Source("a stored provenance"))
            about = any((s.get("digest") or {}).get("sha256") == hexdigest for s in stmt["subject"])
            deps = stmt["predicate"]["buildDefinition"]["resolvedDependencies"]
        except (DlbaseError, ValueError, KeyError, TypeError, AttributeError):
            continue
        versions = predicates.debian_versions(deps) if about and isinstance(deps, list) else {}
        found = versions or found
    return found


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _engine_version(engine: Engine) -> dict:
    try:
        return engine.version()
    except Exception:  # noqa: BLE001 - provenance then says "None" for the engine version
        return {}
