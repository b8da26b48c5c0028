"""Reports: the JSON record (and CycloneDX SBOM) written for every build and every push,
and reading them back for `dlbase report IMAGE`.

Files live in ``.dlbase/reports/`` and are named by the image ID's first 12 hex digits:
``build-<id12>.json`` (written by build.write_report), ``push-<id12>-<UTC time>.json``
(one per push), ``sbom-<id12>.cdx.json`` and ``scan-<id12>.json`` (the newest `dlbase scan`). Reports never contain credentials: the push
report names only where the credentials came from ("environment", "docker config").
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from dlbase.core import fileerrors
from dlbase.verify import records
from dlbase.trust import sbom
from dlbase.engine import Engine
from dlbase.core import documents
from dlbase.core.fsutil import write_json_atomic
from dlbase.core.imageref import labels_of, repo_tags, short_id
from dlbase.image.local_image import locate
from dlbase.define.project import Project
from dlbase.image.readback import read_back
from dlbase.define import labels as image_labels

VERSION_KEYS = ("torch", "torchvision", "cuda", "cudnn_int", "nccl", "python", "albumentations", "opencv", "numpy")


def reports_dir(project: Project) -> Path:
    return project.state_dir / "reports"


def write_sbom(project: Project, *, image_id: str, image_name: str, packages: dict[str, str],
               variant: str | None, lock_hash: str | None) -> Path:
    """The image's SBOM (packages as read back from inside it), with the hashes its
    variant's lock pins when the variant is one of this project's."""
    lock = None
    if variant and variant in {v.name for v in project.matrix.variants}:
        lock = project.variant_dir(variant) / "requirements.lock"
    document = sbom.cyclonedx(image_id=image_id, image_name=image_name, packages=packages, lock_path=lock,
                              properties={"dlbase:variant": str(variant), "dlbase:lock-hash": str(lock_hash)})
    return sbom.write(sbom.path_for(reports_dir(project), image_id), document)


def _read(path: Path) -> dict:
    """A report dlbase wrote, read back by the bounded reader: a damaged or edited one is
    exit 2 naming the file (and its line), not an internal error."""
    source = documents.Source.file(path, hint=f"remove {path}; the next build, push or scan writes it again")
    return documents.expect_object(documents.read_json_file(path, "report", hint=source.hint), source, "a report")


def build_report(project: Project, image_id: str) -> dict | None:
    path = reports_dir(project) / f"build-{short_id(image_id)}.json"
    if not fileerrors.is_file(path, what="dlbase's report"):
        return None
    body = _read(path)
    return body if body.get("image_id") == image_id else None


def push_reports(project: Project, image_id: str) -> list[dict]:
    """Every push report of image_id, oldest first."""
    found = []
    for path in sorted(reports_dir(project).glob(f"push-{short_id(image_id)}-*.json")):
        body = _read(path)
        if body.get("image_id") == image_id:
            body["report_file"] = str(path)
            found.append(body)
    return found


def image_facts(project: Project, engine: Engine, image_id: str) -> dict:
    """What a report says about an image's content: from its build report when there is
    one, otherwise read from the image itself (labels, size, packages from inside)."""
    facts = build_report(project, image_id)
    if facts is not None and facts.get("packages"):
        return facts
    try:
        probe = read_back(engine, image_id)
    except Exception:  # noqa: BLE001 - an image without Python has no Python packages
        probe = {}
    if facts is not None:  # a build that skipped the read-back (rebuild-check, tests)
        return {**facts, "packages": probe.get("packages", {})}
    info = engine.inspect_image(image_id)
    labels = labels_of(info)
    return {
        "kind": "dlbase.image",
        "variant": labels.get(image_labels.VARIANT),
        "image_id": image_id,
        "tags": repo_tags(info),
        "size_bytes": int(info.get("Size", 0)),
        "lock_hash": labels.get(image_labels.LOCK_HASH),
        "base": {"ref": labels.get(image_labels.BASE_NAME),
                 "digest": labels.get(image_labels.BASE_DIGEST)},
        "build_seconds": None,
        "versions": {k: probe.get(k) for k in VERSION_KEYS},
        "packages": probe.get("packages", {}),
        "verification": None,
    }


def verification(project: Project, image_id: str, *, forced: bool = False) -> dict:
    record = records.lookup(project, image_id)
    if record is None:
        return {"passed": None, "status": "never verified", "forced": forced}
    return {"passed": bool(record.get("passed")), "status": "passed" if record.get("passed") else "failed",
            "verified_at": record.get("verified_at"), "require_gpu": record.get("require_gpu"),
            "summary": record.get("summary"), "forced": forced}


def write_push(project: Project, body: dict) -> Path:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return write_json_atomic(reports_dir(project) / f"push-{short_id(body['image_id'])}-{stamp}.json", body)


def write_push_sbom(project: Project, image_id: str, document: dict) -> Path:
    """The SBOM push attests (Python and Debian packages, from the image's inventory), in the
    attestation's own bytes; it replaces the build's Python-only one of the same image."""
    return sbom.write_canonical(sbom.path_for(reports_dir(project), image_id), document)


def write_scan(project: Project, image_id: str, body: dict) -> Path:
    """The newest scan of an image (replacing the previous one): what `report` shows."""
    return write_json_atomic(reports_dir(project) / f"scan-{short_id(image_id)}.json",
                             {**body, "image_id": image_id}, sort_keys=False)


def last_scan(project: Project, image_id: str) -> dict | None:
    """When the image was last scanned, against which database, and the counts."""
    path = reports_dir(project) / f"scan-{short_id(image_id)}.json"
    if not fileerrors.is_file(path, what="dlbase's report"):
        return None
    body = _read(path)
    if body.get("image_id") != image_id:
        return None
    database = body.get("database") if isinstance(body.get("database"), dict) else {}
    return {"scanned_at": body.get("scanned_at"), "database_newest": database.get("newest_modified"),
            "counts": body.get("counts"), "counts_without_vex": body.get("counts_without_vex"),
            "vex_applied": len(body.get("vex") or []), "report_file": str(path)}


def load(project: Project, engine: Engine, image: str) -> dict:
    """Everything known about an image (a tag, a reference or an ID): its content facts,
    repo digests and tags as the daemon knows them now, its verification, its pushes."""
    info = locate(project, engine, image).inspect
    image_id = info["Id"]
    facts = dict(image_facts(project, engine, image_id))
    facts["tags"] = repo_tags(info)
    facts["repo_digests"] = list(info.get("RepoDigests") or [])
    facts["size_bytes"] = int(info.get("Size", facts.get("size_bytes") or 0))
    facts["verification"] = verification(project, image_id)
    pushes = push_reports(project, image_id)
    facts["pushes"] = [{k: p.get(k) for k in ("pushed_at", "registry", "tags", "forced", "report_file")}
                       for p in pushes]
    for p in pushes:
        for ref in p.get("repo_digests") or []:
            if ref not in facts["repo_digests"]:
                facts["repo_digests"].append(ref)
    sbom_path = sbom.path_for(reports_dir(project), image_id)
    facts["sbom_file"] = str(sbom_path) if sbom_path.is_file() else None
    facts["scan"] = last_scan(project, image_id)
    return facts
