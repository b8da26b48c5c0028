"""Measure what `push --sign` adds per image: seconds and registry bytes.

    python -m tests.support.bench_trust [IMAGE]   (default: the default variant's local image)

Pushing a 6 GB image to a loopback registry only to sign it would measure the push, not
the signing; so the subject here is a tiny stand-in manifest in a fresh loopback
registry, while every predicate is computed from the real IMAGE exactly as `push --sign`
computes it (packages read from inside it, dpkg inside it, labels, host facts). Writes
.dlbase/bench/trust-sign.json and .md and prints the table.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

from dlbase.examine import report
from dlbase.cli import ui
from dlbase.engine import Engine
from dlbase.core.fsutil import write_json_atomic
from dlbase.define.project import Project
from dlbase.registry.client import RegistryClient
from dlbase.trust import attach, evidence, keys

from tests.support.registry import running_registry


def main(argv: list[str]) -> int:
    project = Project.discover()
    engine = Engine()
    image = argv[0] if argv else "dlbase/pytorch:2.6-cu124-runtime-debian12"
    image_id = engine.inspect_image(image)["Id"]
    t0 = time.monotonic()
    facts = report.image_facts(project, engine, image_id)
    facts_s = time.monotonic() - t0
    pair = keys.generate()
    with tempfile.TemporaryDirectory() as tmp, running_registry(Path(tmp)) as reg:
        digest = reg.push_manifest("bench/trust", "v1")
        subject = evidence.Subject(reg.host, "bench/trust", digest)
        t1 = time.monotonic()
        result = attach.for_push(project, engine, RegistryClient(reg.host), subject, pair, image_id=image_id,
                                 facts=facts, host_label="bench")
        total_s = time.monotonic() - t1
    body = {"kind": "dlbase.bench.trust-sign", "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(
        timespec="seconds"), "image": image, "image_id": image_id,
        "python_packages": result["sbom_components"]["python"], "debian_packages": result["sbom_components"]["debian"],
        "read_packages_seconds": round(facts_s, 2), "sign_and_attach_seconds_incl_dpkg": round(total_s, 2),
        "registry_io_seconds": result["seconds"], "registry_bytes": result["registry_bytes"],
        "attestations": result["attestations"], "verification_attached": result["verification_attached"]}
    out = project.state_dir / "bench" / "trust-sign.json"
    write_json_atomic(out, body)
    from dlbase.core.fsutil import write_text_atomic

    rows = [f"| {k} | {v} |" for k, v in body.items() if k != "attestations"]
    rows += [f"| bytes of {a['predicateType']} | {a['bytes']} |" for a in body["attestations"]]
    write_text_atomic(out.with_suffix(".md"), "| measure | value |\n|---|---|\n" + "\n".join(rows) + "\n")
    ui.table(["measure", "value"], [[k, v] for k, v in body.items() if k != "attestations"] +
             [[f"bytes of {a['predicateType']}", a["bytes"]] for a in body["attestations"]],
             title="cost of push --sign per image")
    ui.info(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
