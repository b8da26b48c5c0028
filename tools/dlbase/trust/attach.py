"""Gathering the predicates for `push --sign` and `verify --attest`, then attaching them.

Push attaches the SBOM, the provenance and the verification record that let the image
through the gate; a GPU host's `verify --attest` attaches only its own verification.
Push signs with the publisher's key; a GPU host signs with its own verifier key (made on
that host by `dlbase key generate --role verifier`). Both go through :func:`evidence.attach`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from dlbase.verify import records
from dlbase.engine import Engine
from dlbase.core.project import Project
from dlbase.registry.client import RegistryClient
from dlbase.trust import evidence, keys, predicates


def _variant_files(project: Project, variant: str | None) -> tuple[Path | None, Path | None]:
    if variant and variant in {v.name for v in project.matrix.variants}:
        folder = project.variant_dir(variant)
        return folder / "Dockerfile", folder / "requirements.lock"
    return None, None


def for_push(project: Project, engine: Engine, client: RegistryClient, subject: evidence.Subject,
             pair: keys.KeyPair, *, image_id: str, facts: dict, tags: tuple[str, ...] = (),
             host_label: str | None = None, say: Callable[[str], None] = lambda _m: None) -> dict:
    """Sign the pushed digest (one signature naming each pushed tag) and attach SBOM,
    provenance and the local verification record."""
    info = engine.inspect_image(image_id)
    labels = dict((info.get("Config") or {}).get("Labels") or {})
    variant = labels.get("dlbase.variant")
    dockerfile, lock = _variant_files(project, variant)
    say("reading Debian packages from the image (dpkg) for the SBOM")
    debs = predicates.debian_packages(engine, image_id, labels={"dlbase.purpose": "sbom"})
    sbom = predicates.sbom_predicate(image_id=image_id, name=subject.name, python=facts.get("packages") or {},
                                     debs=debs, lock_path=lock, labels=labels)
    provenance = predicates.provenance_predicate(
        labels=labels, image_id=image_id, created=info.get("Created"), build_seconds=facts.get("build_seconds"),
        dockerfile=dockerfile, lock=lock, engine_version=_engine_version(engine))
    attestations = [(predicates.SBOM_TYPE, sbom), (predicates.PROVENANCE_TYPE, provenance)]
    record = records.lookup(project, image_id)
    if record is not None:
        summary = record.get("summary") or {}
        attestations.append((predicates.VERIFICATION_TYPE, predicates.verification_predicate(
            passed=bool(record.get("passed")), verified_at=record.get("verified_at"),
            counts=summary.get("counts") or {}, failed_checks=summary.get("failed_checks") or [],
            require_gpu=bool(record.get("require_gpu")), partial=bool(summary.get("partial")),
            gpus_used=summary.get("gpus"), suite=predicates.suite_hash(project.root),
            host=predicates.host_facts(engine, host_label), image=subject.reference,
            source="dlbase push (the local verification record that let the image through)",
            simulated=bool(summary.get("simulated")),
            note=None if not summary.get("simulated") else f"simulated record: {summary.get('simulated')}")))
    result = evidence.attach(client, subject, pair, sign=True, attestations=attestations, tags=tags, on_step=say)
    result["verification_attached"] = record is not None
    result["sbom_components"] = {"python": len(facts.get("packages") or {}), "debian": len(debs)}
    return result


def for_verify(project: Project, engine: Engine, client: RegistryClient, subject: evidence.Subject,
               pair: keys.KeyPair, report, *, host_label: str | None,
               say: Callable[[str], None] = lambda _m: None) -> dict:
    """Append this host's verification result (a VerifyReport) to the image's evidence."""
    predicate = predicates.verification_predicate(
        passed=report.passed, verified_at=report.started_at, counts=report.counts(),
        failed_checks=report.failed_checks, require_gpu=report.require_gpu, partial=report.partial,
        gpus_used=report.gpus, suite=predicates.suite_hash(project.root),
        host=predicates.host_facts(engine, host_label), image=subject.reference,
        source="dlbase verify --attest")
    return evidence.attach(client, subject, pair, sign=False,
                           attestations=[(predicates.VERIFICATION_TYPE, predicate)], on_step=say)


def _engine_version(engine: Engine) -> dict:
    try:
        return engine.version()
    except Exception:  # noqa: BLE001 - provenance then says "None" for the engine version
        return {}
