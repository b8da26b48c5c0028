"""`dlbase scan IMAGE_OR_VARIANT --db DIR`: known vulnerabilities of what the image installs."""

from __future__ import annotations

from pathlib import Path

import click

from dlbase.cli.paths import PathParam
from dlbase.core import fileerrors
from dlbase.cli import ui
from dlbase.cli.commands.common import OnlyWith, attest_options, json_option, open_project, project_options, variant_spec
from dlbase.core import durations, fsutil
from dlbase.core.errors import DlbaseError, ExitCode, FileProblem, ImageMismatch, Missing
from dlbase.examine import report as image_reports
from dlbase.define.lock import read_lock
from dlbase.vuln import db as db_mod
from dlbase.vuln import report as report_mod
from dlbase.vuln import attestation as attestation_mod
from dlbase.vuln import ecosystems as osv_ecosystems
from dlbase.vuln import image_scan, severity, update, vex
from dlbase.image.inventory import Inventory
from dlbase.cli.helptext import exits

class VulnerabilitiesFound(DlbaseError):
    """Findings at or above --fail-on that no VEX statement answers."""

    exit_code = ExitCode.FAILED


@click.command("scan")
@click.argument("image", required=False)
@click.option("--db", "db_dir", type=PathParam(path_type=Path), default=None,
              help=f"folder of OSV records (*.json) and/or OSV all.zip archives (default ${db_mod.ENV_VAR})")
@click.option("--update", "do_update", is_flag=True,
              help="download OSV's all.zip per ecosystem into --db first (then scan IMAGE, if named)")
@click.option("--ecosystem", "ecosystems", multiple=True, cls=OnlyWith, only_with="do_update",
              help="with --update: an OSV ecosystem to fetch (repeatable; default: PyPI and the OS of each base "
                   "in images/matrix.yaml)")
@click.option("--base-url", default=update.DEFAULT_BASE_URL, envvar="DLBASE_VULN_BASE_URL", show_default=True,
              cls=OnlyWith, only_with="do_update",
              help="with --update: where the archives are (https; http only on loopback)")
@click.option("--fail-on", type=click.Choice([lv.lower() for lv in severity.LEVELS], case_sensitive=False),
              default=None, help=exits("exit {FAILED} when a finding no VEX statement answers is at or above this severity"))
@click.option("--max-db-age", type=float, default=7.0, show_default=True, callback=lambda _c, _p, v: _days(v),
              help=f"warn when the database's newest record is older than this many days (0 to {durations.MAX_DAYS:,})")
@click.option("--vex", "vex_dir", type=PathParam(path_type=Path), default=None,
              help="folder of OpenVEX documents (default images/vex)")
@click.option("--no-vex", is_flag=True, help="apply no VEX statements (every finding stays open)")
@click.option("--predicate", "predicate_out", type=PathParam(path_type=Path), default=None,
              help="also write the result as cosign's vuln predicate (for `cosign attest --type vuln`)")
@click.option("--from-lock", is_flag=True,
              help="scan the variant's requirements.lock instead of an image (Python packages only, no OS packages)")
@attest_options(attest_help="IMAGE is REGISTRY/REPO@sha256:...: pull it by digest if needed, scan it, and append "
                            "the signed scan (cosign's vuln predicate) to its attestations (the image is not "
                            "pushed again)",
                key_help="with --attest: the private key that signs the scan (a publisher's, or a scanner key "
                         "the consumers' trust policy lists under scanners; cosign.key or env://NAME)")
@project_options
@json_option
def command(image: str | None, db_dir: Path | None, do_update: bool, ecosystems: tuple[str, ...], base_url: str,
            fail_on: str | None, max_db_age: float, vex_dir: Path | None, no_vex: bool, predicate_out: Path | None,
            from_lock: bool, attest: bool, attest_key: str | None,
            matrix_file: Path | None, compat_file: Path | None, as_json: bool) -> None:
    """List the known vulnerabilities (OSV advisories) of IMAGE's Python and OS packages.

    IMAGE is a variant (its newest build), a tag, a reference or an image ID; none is the
    matrix's default variant. A VEX statement in images/vex/ that answers a finding moves
    it to its own section with the team's justification.

    With --attest --key KEY, IMAGE is REGISTRY/REPO@sha256:... (a published image): the
    fresh scan is signed and appended to its attestations, so last month's image is
    re-scanned against today's database without a rebuild."""
    attestation = None
    if attest:
        if from_lock or do_update:
            raise click.UsageError("--attest scans a published image: not with --from-lock or --update")
        from dlbase.cli.commands import _attest

        attestation = _attest.prepare(image, attest_key)  # the key (and passphrase) before anything is pulled
    if do_update:
        folder = db_mod.resolve_path(db_dir)
        known = osv_ecosystems.of_matrix(open_project(matrix_file, compat_file).matrix)
        wanted = osv_ecosystems.check(list(ecosystems), known) if ecosystems else list(known)
        got = update.download(folder, wanted, base_url=base_url)
        if not as_json:
            for item in got:
                ui.info(f"updated {item.path}: {item.records} records, {item.size_bytes / 1e6:.1f} MB")
        if image is None:
            if as_json:
                ui.emit_json({"updated": [g.to_dict() for g in got]})
            return
        db_dir = folder
    database = db_mod.load(db_dir)
    project = open_project(matrix_file, compat_file)
    if vex_dir is not None and not fileerrors.is_dir(vex_dir, f"--vex {vex_dir}", what="VEX folder"):
        raise Missing(f"--vex {vex_dir}: no such folder", hint="name the folder of OpenVEX documents (default images/vex)")
    statements = [] if no_vex else image_scan.statements(project, vex_dir)
    if from_lock:
        spec = variant_spec(project, image)
        lock = read_lock(project.variant_dir(spec.name) / "requirements.lock")
        inventory = Inventory(os_ecosystem=None, os_pretty=None, python={p.name: p.version for p in lock.packages})
        target = vex.Target(variant=spec.name, repository=project.matrix.repository)
        scan = report_mod.build(f"{spec.name} (requirements.lock)", inventory, database, statements=statements,
                                target=target, lock=None, max_age_days=max_db_age, lock_only=True)
        image_id = None
    else:
        scan, image_id = _scan_image(project, image, database, statements, max_db_age, attestation, as_json)
    subject = scan.subject
    body = scan.to_dict()
    if attestation is not None:
        body["attestation"] = attestation.attach_statements(
            [(attestation_mod.VULN_TYPE, attestation_mod.vuln_predicate(scan, parameters=_parameters(no_vex)))],
            say=lambda m: None if as_json else ui.info(m))
    if predicate_out is not None:
        fsutil.write_json_atomic(predicate_out, attestation_mod.vuln_predicate(scan), sort_keys=False)
        body["predicate_file"] = str(predicate_out)
    if image_id is not None:
        try:
            body["scan_file"] = str(image_reports.write_scan(project, image_id, body))
        except FileProblem as exc:
            ui.warn(f"the scan is not recorded for `dlbase report`: {exc.message}")
    if as_json:
        ui.emit_json(body)
    else:
        _print(scan, body)
    if scan.lock_disagreements:
        raise ImageMismatch(f"{subject}: {len(scan.lock_disagreements)} Python distribution(s) disagree with the lock",
                            details=[f"{d.name}: lock {d.locked or '(not pinned)'}, image {d.installed or '(absent)'}"
                                     for d in scan.lock_disagreements],
                            hint="the scan describes the image, not the lock: rebuild it (`dlbase build VARIANT`)")
    if fail_on:
        over = [f for f in scan.result.open if severity.rank(f.severity) >= severity.rank(fail_on.upper())]
        if scan.unevaluated:
            raise VulnerabilitiesFound(
                f"{len(scan.unevaluated)} advisory record(s) about installed packages could not be evaluated"
                + (f", and {len(over)} finding(s) are at or above {fail_on.upper()}" if over else "")
                + f" in {subject}: the scan cannot say those packages are not affected",
                details=[f"{u.id} {u.package} {u.installed_version}: {u.reason}" for u in scan.unevaluated],
                hint="fix or remove the record (or update the database: `dlbase scan --update`), then scan again")
        if over:
            raise VulnerabilitiesFound(f"{len(over)} finding(s) at or above {fail_on.upper()} in {subject}",
                                       hint="upgrade the package (see 'fixed in'), or write a reviewed OpenVEX "
                                            "statement in images/vex/ if it does not apply to this image")


def _days(value: float) -> float:
    try:
        return durations.days(value, "the age")
    except DlbaseError as exc:
        raise click.BadParameter(f"{exc.message}; {exc.hint}") from None


def _scan_image(project, image: str | None, database, statements, max_db_age: float, attestation, as_json: bool):
    """Scan a local image, or (with --attest) the published digest, pulled first if needed."""
    from dlbase.engine import Engine

    engine = Engine()
    engine.ping()
    say = (lambda _m: None) if as_json else ui.info
    refs: tuple[str, ...] = ()
    digests: tuple[str, ...] = ()
    if attestation is not None:
        image = attestation.ensure_local(engine, say)
        refs, digests = (attestation.subject.reference,), (attestation.subject.digest,)
    scan, located = image_scan.scan(project, engine, image, database, statements=statements,
                                    max_age_days=max_db_age, refs=refs, digests=digests, say=say)
    return scan, located.image_id


def _parameters(no_vex: bool) -> list[str]:
    return ["dlbase", "scan", "--attest"] + (["--no-vex"] if no_vex else [])


def _print(scan: report_mod.ScanReport, body: dict) -> None:
    db = body["database"]
    ui.info(f"database {db['path']}: {db['records']} records, newest modified {db['newest_modified'] or 'unknown'}"
            + ("" if db["age_days"] is None else f" ({db['age_days']:.1f} days ago)"))
    if scan.stale:
        ui.warn(f"the vulnerability database is older than {scan.max_age_days:g} days: advisories published since "
                "are not known to this scan; update it (`dlbase scan --update --db DIR`)")
    for eco in scan.not_covered:
        ui.warn(f"the database has no records for {eco}: those packages were NOT checked")
    if scan.lock_only:
        ui.warn("lock only: the OS packages were not scanned (scan the built image for those)")
    elif not scan.lock_checked:
        ui.warn("the image names no variant of this project: its Python packages were not compared with a lock")
    noted = bool(scan.result.annotated)  # a VEX column only when a statement speaks for an open finding
    rows = [[_ids(f), f.package, f.installed_version, f.fixed_in, _sev(f)] + ([_vex_status(scan, f)] if noted else [])
            for f in scan.result.open]
    ui.table(["advisory", "package", "installed", "fixed in", "severity"] + (["VEX"] if noted else []), rows,
             title=f"{scan.subject}: {len(rows)} known vulnerabilities "
                   f"({', '.join(f'{n} {e}' for e, n in scan.packages.items())} packages)")
    for applied in scan.result.annotated:
        if applied.statement.action_statement:
            ui.warn(f"{applied.finding.id} {applied.finding.package}: VEX says {applied.statement.status}: "
                    f"{applied.statement.action_statement}")
    if scan.result.vex:
        ui.table(["advisory", "package", "installed", "status", "justification / reasoning"],
                 [[_ids(a.finding), a.finding.package, a.finding.installed_version, a.statement.status,
                   "; ".join(x for x in (a.statement.justification, a.statement.impact_statement) if x)
                   + f" ({a.statement.source})"] for a in scan.result.vex],
                 title="not affected / fixed (VEX)")
    if scan.unevaluated:
        ui.table(["advisory", "package", "installed", "why"],
                 [[u.id, u.package, u.installed_version, u.reason] for u in scan.unevaluated],
                 title=f"could not evaluate: {len(scan.unevaluated)} advisory record(s) (NOT known to be unaffected)")
    summary = ", ".join(f"{n} {level.lower()}" for level, n in body["counts"].items() if n) or "none"
    ui.out.print(f"open findings by severity: {summary}"
                 + (f"; {len(scan.result.vex)} answered by VEX" if scan.result.vex else "")
                 + (f"; {len(scan.unevaluated)} could not be evaluated" if scan.unevaluated else ""), markup=False)
    for d in scan.lock_disagreements:
        ui.warn(f"lock disagreement: {d.name}: lock {d.locked or '(not pinned)'}, image {d.installed or '(absent)'}")


def _vex_status(scan: report_mod.ScanReport, finding) -> str:
    """The status of a VEX statement that speaks for an open finding without answering it."""
    statement = scan.result.statement_for(finding)
    return "" if statement is None else statement.status


def _ids(finding) -> str:
    return finding.id + (f" ({', '.join(finding.aliases)})" if finding.aliases else "")


def _sev(finding) -> str:
    return finding.severity + (f" {finding.score:.1f}" if finding.score is not None else "")
