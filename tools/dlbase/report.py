"""Reports: the JSON record (and CycloneDX SBOM) written for every build and every push,
and reading them back for `dlbase report IMAGE`.

Files live in ``.dlbase/reports/`` and are named by the image ID's first 12 hex digits:
``build-<id12>.json`` (written by build.write_report), ``push-<id12>-<UTC time>.json``
(one per push) and ``sbom-<id12>.cdx.json``. Reports never contain credentials: the push
report names only where the credentials came from ("environment", "docker config").
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING

from dlbase import records, sbom
from dlbase.fsutil import write_json_atomic
from dlbase.engine import Engine
from dlbase.errors import Missing
from dlbase.project import Project

if TYPE_CHECKING:  # build imports this module; avoid the cycle at run time
    from dlbase.build import BuildResult
    from dlbase.spec import BuildSpec

VERSION_KEYS = ("torch", "torchvision", "cuda", "cudnn_int", "nccl", "python", "albumentations", "opencv", "numpy")


def reports_dir(project: Project) -> Path:
    return project.state_dir / "reports"


def id12(image_id: str) -> str:
    return image_id.split(":")[-1][:12]


def build_sbom(project: Project, result: "BuildResult", spec: "BuildSpec") -> Path:
    """The SBOM of a fresh build (packages as read back from inside the image)."""
    document = sbom.cyclonedx(
        image_id=result.image_id, image_name=result.immutable_tag,
        packages=result.probe.get("packages", {}) or {},
        lock_path=project.variant_dir(spec.name) / "requirements.lock",
        properties={"dlbase:variant": result.variant, "dlbase:lock-hash": result.lock_hash})
    return sbom.write(sbom.path_for(reports_dir(project), result.image_id), document)


def build_report(project: Project, image_id: str) -> dict | None:
    path = reports_dir(project) / f"build-{id12(image_id)}.json"
    if not path.is_file():
        return None
    body = json.loads(path.read_text())
    return body if body.get("image_id") == image_id else None


def push_reports(project: Project, image_id: str) -> list[dict]:
    """Every push report of image_id, oldest first."""
    found = []
    for path in sorted(reports_dir(project).glob(f"push-{id12(image_id)}-*.json")):
        body = json.loads(path.read_text())
        if body.get("image_id") == image_id:
            body["report_file"] = str(path)
            found.append(body)
    return found


def image_facts(project: Project, engine: Engine, image_id: str) -> dict:
    """What a report says about an image's content: from its build report when there is
    one, otherwise read from the image itself (labels, size, packages from inside)."""
    from dlbase import build as build_mod  # late: build imports this module

    facts = build_report(project, image_id)
    if facts is not None and facts.get("packages"):
        return facts
    try:
        probe = build_mod.read_back(engine, image_id)
    except Exception:  # noqa: BLE001 - an image without Python has no Python packages
        probe = {}
    if facts is not None:  # a build that skipped the read-back (rebuild-check, tests)
        return {**facts, "packages": probe.get("packages", {})}
    info = engine.inspect_image(image_id)
    labels = (info.get("Config") or {}).get("Labels") or {}
    return {
        "kind": "dlbase.image",
        "variant": labels.get("dlbase.variant"),
        "image_id": image_id,
        "tags": [t for t in info.get("RepoTags") or [] if t != "<none>:<none>"],
        "size_bytes": int(info.get("Size", 0)),
        "lock_hash": labels.get("dlbase.lock-hash"),
        "base": {"ref": labels.get("org.opencontainers.image.base.name"),
                 "digest": labels.get("org.opencontainers.image.base.digest")},
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
    return write_json_atomic(reports_dir(project) / f"push-{id12(body['image_id'])}-{stamp}.json", body)


def write_push_sbom(project: Project, facts: dict, image_id: str, name: str) -> Path:
    lock = None
    if facts.get("variant") and facts["variant"] in {v.name for v in project.matrix.variants}:
        lock = project.variant_dir(facts["variant"]) / "requirements.lock"
    document = sbom.cyclonedx(image_id=image_id, image_name=name, packages=facts.get("packages") or {},
                              lock_path=lock, properties={"dlbase:variant": str(facts.get("variant")),
                                                          "dlbase:lock-hash": str(facts.get("lock_hash"))})
    return sbom.write(sbom.path_for(reports_dir(project), image_id), document)


def load(project: Project, engine: Engine, image: str) -> dict:
    """Everything known about an image (a tag, a reference or an ID): its content facts,
    repo digests and tags as the daemon knows them now, its verification, its pushes."""
    try:
        info = engine.inspect_image(image)
    except Missing:
        raise Missing(f"no image {image!r} on this daemon", hint="give a tag, a reference or an image ID") from None
    image_id = info["Id"]
    facts = dict(image_facts(project, engine, image_id))
    facts["tags"] = [t for t in info.get("RepoTags") or [] if t != "<none>:<none>"]
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
    return facts
