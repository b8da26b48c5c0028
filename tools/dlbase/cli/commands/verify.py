"""`dlbase verify`: host-side (testinfra) and in-image (pytest) checks of a built image."""

from __future__ import annotations

from pathlib import Path

import click

from dlbase.cli.paths import PathParam
from dlbase.cli import ui
from dlbase.core import signals, validate
from dlbase.verify import runner as verify_mod
from dlbase.verify.report import ONLY, VerifyReport
from dlbase.cli.commands.common import OnlyWith, attest_options, json_option, open_project, project_options
from dlbase.engine import Engine
from dlbase.core.errors import VerifyFailed
from dlbase.cli.helptext import with_exit_codes


def _labels(items: tuple[str, ...]) -> dict[str, str]:
    labels = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("dlbase."):
            raise click.BadParameter(f"'{item}' is not dlbase.KEY=VALUE", param_hint="--label")
        labels[key] = value
    return labels


def failed_hint(report: VerifyReport, *, require_gpu: bool) -> str:
    """What to read after a failed verify: the files it wrote, by name. Not "the rows
    above": under --json no table is printed, and the files are there in either mode."""
    gpu = "; a GPU check on a CPU host needs a GPU host" if require_gpu else ""
    return (f"each failed check's message is in {report.report_file} (failed_checks, rows) and in the JUnit XML "
            f"{report.junit_file}{gpu}")


def print_summary(report: VerifyReport) -> None:
    rows = [[r.half if not r.detail else "", r.check, r.result, f"{r.seconds:.1f}", r.reason] for r in report.rows]
    ui.table(["half", "check", "result", "seconds", "reason / details"], rows,
             title=f"dlbase verify {report.image}", status_column="result")
    counts = report.counts()

    def text(half: str, what: str) -> str:
        c = counts.get(half) or {}
        if not c:
            return f"{what}: not run"
        parts = ", ".join(f"{n} {k}" for k, n in c.items())
        return f"{what}: {parts}"

    verdict = "PASSED" if report.passed else "FAILED"
    if report.partial and report.passed:
        verdict += " (partial run: not recorded as verified)"
    ui.out.print(f"{verdict}  {report.image_id[:19]}  {text('host', 'host checks')}; "
                 f"{text('image', 'in-image tests')}; GPUs: {'yes' if report.gpus else 'no'}; "
                 f"/dev/shm: {report.shm}; {report.seconds:.0f}s")
    ui.info(f"junit: {report.junit_file}\nreport: {report.report_file}"
            + (f"\nrecord: {report.record_file}" if report.record_file else ""))


@click.command("verify")
@click.argument("image_or_variant", required=False)
@click.option("--require-gpu", is_flag=True, help="GPU checks fail instead of skipping (use on GPU hosts)")
@click.option("--gpus/--no-gpus", "gpus", default=None,
              help="start the container with all GPUs (default: when the daemon has the NVIDIA runtime)")
@click.option("--shm-size", default=verify_mod.DEFAULT_SHM, show_default=True,
              help="/dev/shm of the container (DataLoader workers and NCCL need more than Docker's 64m)")
@click.option("--ipc-host", is_flag=True, help="share the host's IPC namespace instead of a private /dev/shm")
@click.option("--only", type=click.Choice(ONLY), default=None,
              help="run one half only (a partial run is never recorded as a pass)")
@click.option("-k", "keyword", metavar="EXPR", default=None,
              help="only the checks/tests matching this pytest -k expression (partial run)")
@click.option("--junit", "junit_file", type=PathParam(path_type=Path), default=None,
              help="write the merged JUnit XML here (default .dlbase/reports/verify-<id>.xml)")
@click.option("--report", "report_file", type=PathParam(path_type=Path), default=None,
              help="write the JSON report here (default .dlbase/reports/verify-<id>.json)")
@click.option("--label", "labels", multiple=True, metavar="dlbase.KEY=VALUE",
              help="extra label on the containers verify starts (repeatable), e.g. a CI run ID")
@attest_options(attest_help="IMAGE is REGISTRY/REPO@sha256:...: pull it by digest, verify, and append this host's "
                            "signed verification attestation to it in the registry (the image is not pushed again)",
                key_help="with --attest: this host's own private verifier key (`dlbase key generate --role "
                         "verifier`; cosign.key or env://NAME), never the publisher's")
@click.option("--host-label", default=None, metavar="LABEL", cls=OnlyWith, only_with="attest",
              help="with --attest: this host's name in the attestation (e.g. gpu-h200-01)")
@project_options
@json_option
@with_exit_codes
def command(image_or_variant: str | None, require_gpu: bool, gpus: bool | None, shm_size: str, ipc_host: bool,
            only: str | None, keyword: str | None, junit_file: Path | None, report_file: Path | None,
            labels: tuple[str, ...], attest: bool, attest_key: str | None, host_label: str | None,
            matrix_file: Path | None, compat_file: Path | None, as_json: bool) -> None:
    """Verify IMAGE_OR_VARIANT (a variant name, an image tag or ID; default: the matrix's default
    variant): testinfra from the host and the image's own suite inside it. Exit {VERIFY} on any failure.

    With --attest --key KEY, IMAGE is REGISTRY/REPO@sha256:...: the result, passed or failed,
    is signed and appended to the image's attestations in the registry."""
    if image_or_variant is not None:
        validate.image_ref(image_or_variant, where="IMAGE_OR_VARIANT")
    validate.size(shm_size, where="--shm-size")
    attestation = None
    if attest:
        from dlbase.cli.commands import _attest

        attestation = _attest.prepare(image_or_variant, attest_key)
    options = verify_mod.VerifyOptions(require_gpu=require_gpu, gpus=gpus, shm_size=shm_size, ipc_host=ipc_host,
                                       only=only, keyword=keyword, junit_file=junit_file, report_file=report_file,
                                       labels=_labels(labels))
    project = open_project(matrix_file, compat_file, writes_state=True)
    engine = Engine()
    engine.ping()
    if attestation is not None:
        image_or_variant = attestation.pull_dlbase_image(engine, say=lambda m: None if as_json else ui.info(m))
    target = verify_mod.resolve(project, engine, image_or_variant)
    with signals.sigterm_as_interrupt():  # a CI cancel cleans up like Ctrl-C
        report = verify_mod.verify(project, engine, target, options, say=lambda m: None if as_json else ui.info(m))
    attached = None
    if attestation is not None:
        attached = attestation.attach(project, engine, report, host_label,
                                      say=lambda m: None if as_json else ui.info(m))
    if as_json:
        ui.emit_json({**report.to_dict(), **({"attestation": attached} if attached else {})})
    else:
        print_summary(report)
        if attached:
            ui.info(f"attested: {report.image} {'passed' if report.passed else 'FAILED'} as "
                    f"{attached['attestations'][0]['predicateType']} ({attached['seconds']:.1f}s, "
                    f"{attached['registry_bytes']:,} bytes added to the registry)")
    if not report.passed:
        failed = report.failed_checks
        err = VerifyFailed(f"{target.ref} failed verification: {', '.join(failed) or 'no check ran'}",
                           hint=failed_hint(report, require_gpu=require_gpu))
        raise err  # under --json the CLI merges it into the report: one document
