"""`dlbase push`: publish a verified image's immutable and moving tags to a registry."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from dlbase.cli.paths import PathParam
from dlbase.publish import compression
from dlbase.publish import push as publish
from dlbase.cli import ui
from dlbase.core import validate
from dlbase.cli.commands.common import OnlyWith, json_option, open_project, project_options
from dlbase.cli.progress import TransferProgress
from dlbase.engine import Engine
from dlbase.cli.helptext import with_exit_codes


@click.command("push")
@click.argument("image")
@click.option("--registry", "host", required=True, metavar="HOST[:PORT]",
              help="registry to push to; credentials come from the Docker config or "
                   "DLBASE_REGISTRY_USER/DLBASE_REGISTRY_PASSWORD, never from the command line")
@click.option("--force", is_flag=True, help="push even if the image has not passed `dlbase verify` (recorded)")
@click.option("--sign", "sign_key", default=None, metavar="KEY",
              help="sign the pushed digest and attach SBOM, provenance and verification with this private "
                   "key (cosign.key, or env://NAME; passphrase from DLBASE_SIGNING_PASSWORD or a prompt)")
@click.option("--host-label", default=None, metavar="LABEL", cls=OnlyWith, only_with="sign_key",
              help="with --sign: the name of this host in the verification attestation")
@click.option("--scan-db", "scan_db", type=PathParam(path_type=Path), default=None, metavar="DIR", cls=OnlyWith,
              only_with="sign_key", why="the scan is attached as a signed attestation",
              help="with --sign: scan the image against this vulnerability database (as `dlbase scan --db`; "
                   "default $DLBASE_VULN_DB) and attach the result; without one, push says no scan was attached")
@click.option("--compression", "layer_compression", type=click.Choice(compression.CHOICES), default=None,
              help="layer compression in the registry. Default: the image's own (what its line builds, "
                   "images/matrix.yaml `compression:`), pushed as built, so the registry digest is the image ID. "
                   "The other one converts (every core, streamed): gzip for Docker 20.10 pullers, zstd for a "
                   "gzip image (Docker >= 23 pulls it, smaller and faster to unpack)")
@click.option("--gzip-fallback", is_flag=True,
              help="with a zstd image: also publish its gzip form under each tag + '-gzip', for pullers that read "
                   "gzip only (Docker 20.10); a tag, not an OCI index, because clients take an index's first entry "
                   "for their platform whatever its layers are (docs/operators-compression.md)")
@click.option("--quiet", "-q", is_flag=True, help="no progress")
@project_options
@json_option
@with_exit_codes
def command(image: str, host: str, force: bool, sign_key: str | None, host_label: str | None, scan_db: Path | None,
            layer_compression: str | None, gzip_fallback: bool, quiet: bool, matrix_file: Path | None, compat_file: Path | None, as_json: bool) -> None:
    """Push IMAGE (a variant name, a tag or an image ID) to --registry.

    Pushes the immutable and the moving tag, refuses unverified images (exit {NOT_VERIFIED}) and
    never overwrites an immutable tag that names another image or holds this one with
    the other --compression (exit {TAG_CONFLICT}); then reads
    the manifests back, pulls the image by digest and runs one command in it. With
    --sign, also attaches a scan (--scan-db or $DLBASE_VULN_DB) and the VEX about it.
    """
    host = validate.registry_host(host)  # a URL or a bad port: exit 2 before anything is touched
    validate.image_ref(image)
    project = open_project(matrix_file, compat_file, writes_state=True)
    signer = None
    if sign_key:
        from dlbase.cli.commands._signing import private_key

        signer = private_key(sign_key)  # a wrong passphrase stops here, before anything is pushed
    engine = Engine()
    engine.ping()
    progress = TransferProgress(quiet or as_json)
    local = publish.resolve(project, engine, image)
    scan = _scan_inputs(project, scan_db) if signer is not None else None  # a bad database or VEX: before pushing
    if force:
        ui.warn("--force: the verification requirement is waived; the report records it")
    try:
        body = publish.publish(project, engine, local, host, force=force, on_event=progress.event, say=progress.say,
                               signer=signer, host_label=host_label, scan=scan, layer_compression=layer_compression,
                               gzip_fallback=gzip_fallback)
    finally:
        progress.close()
    if as_json:
        ui.emit_json({"ok": True, **body})
        return
    rows = []
    for t in body["tags"].values():
        change = t["action"]
        if t["before"] and t["before"] != t["digest"]:
            change += f" (from {t['before'][:19]})"
        rows.append([t["reference"], t["digest"], change])
    ui.table(["tag", "digest", "change"], rows, title=f"pushed {body['image_id'][:19]} to {body['registry']} "
             f"({body['compression']} layers" + (f", {body['registry_bytes']:,} bytes stored)"
                                                 if body.get("registry_bytes") else ")"))
    ui.info(f"verification: {body['verification']['status']}" + (" (FORCED)" if body["forced"] else ""))
    ui.info(f"pull check: {body['pull_check']['reference']} -> {body['pull_check']['output']}")
    if body.get("gzip_fallback"):
        fb = body["gzip_fallback"]
        ui.info(f"gzip fallback: {', '.join(t['reference'] for t in fb['tags'].values())} -> {fb['digest']} "
                f"({fb['registry_bytes']:,} bytes stored; pull check: {fb['pull_check']['output']})")
    if body.get("signing"):
        s = body["signing"]
        new = [a["predicateType"] for a in s["attestations"] if not a.get("existing")]
        ui.info(f"{'already signed' if s['signature'].get('existing') else 'signed'} ({s['signature']['tag']}); "
                f"attached {len(new)} new attestation(s) ({', '.join(new) or 'none'}), "
                f"{len(s['attestations']) - len(new)} already there: {s['seconds']:.1f}s, "
                f"{s['registry_bytes']:,} bytes added to the registry")
    if body.get("signing"):
        scanned = body["signing"]["scan"]
        if scanned["attached"]:
            counts = ", ".join(f"{n} {level.lower()}" for level, n in scanned["counts"].items() if n) or "none"
            ui.info(f"scan attached: open findings {counts}; {scanned['vex_applied']} answered by VEX; "
                    f"database newest record {scanned['database_newest']}")
        else:
            ui.warn(scanned["reason"])
        ui.info(f"VEX attached: {scanned['vex_statements']} statement(s) about this image" if scanned["vex_statements"]
                else "VEX: no statement in images/vex is about this image")
    ui.info(f"report: {body['report_file']}\nsbom: {body['sbom_file']}")


def _scan_inputs(project, scan_db: Path | None):
    """The database (None when neither --scan-db nor $DLBASE_VULN_DB names one) and VEX."""
    from dlbase.trust.attach import ScanInputs
    from dlbase.vuln import db as db_mod
    from dlbase.vuln import image_scan

    named = db_mod.configured(scan_db)
    return ScanInputs(database=db_mod.load(named) if named else None, statements=image_scan.statements(project))
