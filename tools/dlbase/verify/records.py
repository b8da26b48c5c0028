"""Verification records, kept per image ID, so publishing can refuse an image that was
never verified (or failed). A record names the image ID, not a tag: tags move, IDs do not.

Records live under .dlbase/verified/ on the machine that ran `dlbase verify`; they are
local evidence, not a registry-side attestation. A record keeps the facts of the moment
verify ran: the digests of the suites that ran and the host's facts (GPUs, driver...), so
a later `push --sign` attests those, not what the host or the checkout says at push time.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from dlbase.core import fileerrors
from dlbase.core import documents
from dlbase.core.fsutil import write_json_atomic
from dlbase.define.project import Project


def _path(project: Project, image_id: str) -> Path:
    return project.state_dir / "verified" / f"{image_id.split(':')[-1]}.json"


def record(project: Project, image_id: str, *, passed: bool, summary: dict, report_file: str | None = None,
           require_gpu: bool = False, suites: dict[str, dict] | None = None, host: dict | None = None) -> Path:
    """Store the outcome of a verification of image_id (atomically), with the suites that
    ran (name -> digest) and the host's facts as they were during the run."""
    body = {"image_id": image_id, "passed": passed, "require_gpu": require_gpu,
            "verified_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "summary": summary, "report_file": report_file, "suites": suites, "host": host}
    return write_json_atomic(_path(project, image_id), body)


def lookup(project: Project, image_id: str) -> dict | None:
    """The latest verification record of image_id, or None when it was never verified."""
    path = _path(project, image_id)
    if not fileerrors.is_file(path, what="verification record"):
        return None
    source = documents.Source.file(path, hint=f"remove {path} and verify the image again (`dlbase verify VARIANT`)")
    return documents.expect_object(documents.read_json_file(path, "report", hint=source.hint), source,
                                   "a verification record")
