"""Gathering the predicates for `push --sign` and `verify --attest`, then attaching them.

Push attaches the SBOM, the provenance and the verification record that let the image
through the gate; a GPU host's `verify --attest` attaches only its own verification.
Push signs with the publisher's key; a GPU host signs with its own verifier key (made on
that host by `dlbase key generate --role verifier`). Both go through :func:`evidence.attach`.
"""

from __future__ import annotations

from typing import Callable

from dlbase.core import imageref
from dlbase.verify import records
from dlbase.engine import Engine
from dlbase.core.project import Project
from dlbase.registry.client import RegistryClient
from dlbase.trust import evidence, keys, predicates, probes, sources


def for_push(project: Project, engine: Engine, client: RegistryClient, subject: evidence.Subject,
             pair: keys.KeyPair, *, image_id: str, facts: dict, tags: tuple[str, ...] = (),
             host_label: str | None = None, say: Callable[[str], None] = lambda _m: None) -> dict:
    """Sign the pushed digest (one signature naming each pushed tag) and attach SBOM,
    provenance and the local verification record.

    The build's inputs come from the image and its commit (:mod:`sources`), the
    verification's suites and host facts from the record verify wrote when it ran.
    """
    info = engine.inspect_image(image_id)
    labels = imageref.labels_of(info)
    say("reading the lock and os-release from the image, the Dockerfile from its commit")
    built = sources.read(project.root, engine, image_id, labels)
    say("reading Debian packages from the image (dpkg) for the SBOM")
    debs = probes.debian_packages(engine, image_id, labels={"dlbase.purpose": "sbom"})
    sbom = predicates.sbom_predicate(image_id=image_id, name=subject.name, python=facts.get("packages") or {},
                                     debs=debs, built=built, labels=labels)
    provenance = predicates.provenance_predicate(
        labels=labels, image_id=image_id, created=info.get("Created"), build_seconds=facts.get("build_seconds"),
        dockerfile=built.dockerfile, lock=built.lock, engine_version=_engine_version(engine))
    attestations = [(predicates.SBOM_TYPE, sbom), (predicates.PROVENANCE_TYPE, provenance)]
    record = records.lookup(project, image_id)
    if record is not None:
        attestations.append((predicates.VERIFICATION_TYPE, _from_record(project, record, host_label, subject)))
    result = evidence.attach(client, subject, pair, sign=True, attestations=attestations, tags=tags, on_step=say)
    result["verification_attached"] = record is not None
    result["sbom_components"] = {"python": len(facts.get("packages") or {}), "debian": len(debs)}
    result["built_from"] = {"lock": built.lock is not None, "dockerfile": built.dockerfile is not None,
                            "distro": built.distro}
    return result


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


def _engine_version(engine: Engine) -> dict:
    try:
        return engine.version()
    except Exception:  # noqa: BLE001 - provenance then says "None" for the engine version
        return {}
