"""One digest per verify suite: what a verification record says ran, checkout or image alike.

Verify computes it for the suites it runs and trust's test-result predicate carries it, so
it lives below both (trust reads verify's records; verify never imports trust).
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def suite_digest(files: dict[str, bytes]) -> dict:
    """sha256 over one suite's files (relative path + content, sorted), caches left out:
    the same files give the same digest wherever they were read (checkout or image)."""
    h = hashlib.sha256()
    kept = sorted(rel for rel in files if "__pycache__" not in rel.split("/") and not rel.endswith(".pyc"))
    for rel in kept:
        h.update(rel.encode() + b"\0" + files[rel] + b"\0")
    return {"sha256": h.hexdigest(), "files": len(kept)}


def folder_files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by its relative path (for :func:`suite_digest`)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
