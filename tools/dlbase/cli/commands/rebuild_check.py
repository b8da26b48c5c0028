"""`dlbase rebuild-check VARIANT`: two from-scratch builds must give the same image.

With ``--attest REF --key KEY`` a second builder vouches for a published image: REF is
resolved to its digest once, before anything is built, and a signed rebuilt-identical
statement is appended to it only when the rebuilt digest is REF's (:mod:`._rebuildattest`).
"""

from __future__ import annotations

from pathlib import Path

import click

from dlbase.build import reproduce
from dlbase.cli import ui
from dlbase.cli.commands._changes import print_changes, print_layer_diff
from dlbase.cli.commands._rebuildattest import Attesting
from dlbase.cli.commands.common import OnlyWith, json_option, open_project, parse_labels, project_options, variant_spec
from dlbase.cli.progress import BuildProgress
from dlbase.core.errors import NotReproducible
from dlbase.engine import Engine
from dlbase.engine.builderchoice import BUILDERS
from dlbase.examine import layerdiff
from dlbase.cli.helptext import with_exit_codes


@click.command("rebuild-check")
@click.argument("variant", required=False)
@click.option("--builder", type=click.Choice(BUILDERS), default="auto", show_default=True,
              help="BuildKit compares the two image digests; classic (no buildx) compares every file")
@click.option("--keep", is_flag=True, help="keep both (untagged) images for inspection")
@click.option("--limit", default=40, show_default=True, help="rows listed per group in the table")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="extra label on both builds")
@click.option("--attest", "attest_ref", default=None, metavar="REF",
              help="a published image (REGISTRY/REPO@sha256:... or :TAG, resolved once): when the rebuild gets "
                   "its digest, sign a rebuilt-identical statement about it and append it to its attestations")
@click.option("--key", "attest_key", default=None, metavar="KEY", cls=OnlyWith, only_with="attest_ref",
              help="with --attest: this builder's own private rebuilder key (`dlbase key generate --role "
                   "rebuilder`; cosign.key or env://NAME)")
@click.option("--host-label", default=None, metavar="LABEL", cls=OnlyWith, only_with="attest_ref",
              help="with --attest: this builder's name in the statement (e.g. second-builder)")
@project_options
@json_option
@with_exit_codes
def command(variant: str | None, builder: str, keep: bool, limit: int, labels: tuple[str, ...],
            attest_ref: str | None, attest_key: str | None, host_label: str | None, matrix_file: Path | None,
            compat_file: Path | None, as_json: bool) -> None:
    """Build VARIANT twice without layer cache and compare. With BuildKit: the image
    manifest digests (nothing excluded); when they differ, the layers, files and Debian
    package versions that differ. With the classic builder: the installed packages (with
    hashes) and a digest of every file, except the paths listed in docs/failures.md.
    Exit {OK} when they match, {NOT_REPRODUCIBLE} when they differ.

    With --attest REF --key KEY: when the rebuilt digest is REF's, a signed rebuilt-identical
    attestation is appended to REF; a different digest attaches nothing (exit {NOT_REPRODUCIBLE}).
    """
    extra = parse_labels(labels)
    attestation = None
    if attest_ref:
        from dlbase.cli.commands import _attest

        attestation = _attest.prepare(attest_ref, attest_key, tag_ok=True)  # key and digest before any build
    project = open_project(matrix_file, compat_file, writes_state=True)
    spec = variant_spec(project, variant)
    engine = Engine()
    engine.ping()
    progress = BuildProgress(quiet=as_json)
    with Attesting(attestation, engine, keep=keep, host_label=host_label, on_event=progress.event,
                   say=progress.say) as attesting:
        result = reproduce.rebuild_check(project, spec, engine, on_event=attesting.on_event, say=progress.say,
                                         extra_labels=extra, keep=attesting.keep, builder=builder)
        body = attesting.attach({"ok": result.reproducible, **result.to_dict()})
    if as_json:
        ui.emit_json(body)
    else:
        _print(result, limit)
        attesting.print_summary(body)
    attesting.raise_if_refused()
    if not result.reproducible:
        raise _not_reproducible(result)  # under --json the CLI merges it into the result: one document


def _print(result: reproduce.RebuildResult, limit: int) -> None:
    verdict = "pass: identical" if result.reproducible else "fail: differs"
    if result.builder == "buildkit":
        ui.table(["variant", "builder", "build 1 digest", "build 2 digest", "result"],
                 [[result.variant, result.builder, f"{result.digests[0]} ({result.build_seconds[0]:.0f}s)",
                   f"{result.digests[1]} ({result.build_seconds[1]:.0f}s)", verdict]], status_column="result")
        ui.info(f"compared: the image manifest digests (SOURCE_DATE_EPOCH={result.source_date_epoch}, "
                f"revision {result.revision}); 0 excluded paths")
        if result.layers is not None:
            print_layer_diff(result.layers, limit=limit)
        return
    assert result.diff is not None
    ui.table(["variant", "builder", "build 1", "build 2", "files compared", "result"],
             [[result.variant, result.builder, f"{result.image_ids[0][:19]} ({result.build_seconds[0]:.0f}s)",
               f"{result.image_ids[1][:19]} ({result.build_seconds[1]:.0f}s)",
               "/".join(str(n) for n in result.diff.files_compared), verdict]], status_column="result")
    ui.info("excluded (legitimately vary): " + ", ".join(sorted(result.excluded_paths)))
    if not result.reproducible:
        print_changes(result.diff.groups, limit=limit)


def _not_reproducible(result: reproduce.RebuildResult) -> NotReproducible:
    if result.builder == "buildkit":
        lines = layerdiff.explain(result.layers) if result.layers is not None else []
        return NotReproducible(f"{result.variant}: two from-scratch builds gave two digests",
                               details=lines,
                               hint="the first layer listed is where they part; a Debian package that moved is "
                                    "the mirror, a file that differs in content or mtime is the templates'")
    assert result.diff is not None
    counts = {k: len(c.added) + len(c.removed) + len(c.changed) for k, c in result.diff.groups.items()}
    return NotReproducible(f"{result.variant}: two from-scratch builds differ ("
                           + ", ".join(f"{k}: {n}" for k, n in counts.items() if n) + ")",
                           hint="the differing packages and files are listed with this result (the table, or "
                                "its labels, packages and files groups under --json); Debian packages differ "
                                "only if the mirror changed")
