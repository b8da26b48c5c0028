"""Options and helpers shared by the verbs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from dlbase.cli.paths import PathParam
from dlbase.define.project import Project


def project_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--matrix / --compat, for trying a different file without editing the committed one."""
    fn = click.option("--compat", "compat_file", type=PathParam(path_type=Path), default=None,
                      help="compatibility table (default images/compat.yaml)")(fn)
    fn = click.option("--matrix", "matrix_file", type=PathParam(path_type=Path), default=None,
                      help="variant matrix (default images/matrix.yaml)")(fn)
    return fn


class OnlyWith(click.Option):
    """An option that means something only beside another one (``--host-label`` with
    ``--sign``, ``--key`` with ``--attest``): given without it, the command refuses (exit 2)
    instead of ignoring it, because an ignored ``--scan-db`` or ``--host-label`` is a
    push without the scan or the name the user asked for.

    Declared on the option (``cls=OnlyWith, only_with="sign_key"``), checked in one place:
    the parser's own result, where every option given on the command line is present
    whatever order click processes them in (values from the environment do not count)."""

    def __init__(self, *decls: Any, only_with: str, why: str | None = None, **attrs: Any):
        super().__init__(*decls, **attrs)
        self.only_with, self.why = only_with, why

    def handle_parse_result(self, ctx: click.Context, opts: Any, args: list[str]) -> Any:
        if self.name in opts and self.only_with not in opts:
            leader = next(p for p in ctx.command.params if p.name == self.only_with)
            mine, theirs = self.opts[0], leader.opts[0]
            raise click.UsageError(f"{mine} goes with {theirs}" + (f" ({self.why})" if self.why else "")
                                   + f": add {theirs}, or leave {mine} out", ctx=ctx)
        return super().handle_parse_result(ctx, opts, args)


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="print JSON for programs instead of a table")(fn)


def attest_options(*, attest_help: str, key_help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--attest`` and ``--key KEY`` (``attest_key``) of the verbs that append a signed
    result to a published image (`verify`, `scan`): one spelling for both."""
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = click.option("--key", "attest_key", default=None, metavar="KEY", help=key_help, cls=OnlyWith,
                          only_with="attest")(fn)
        return click.option("--attest", is_flag=True, help=attest_help)(fn)
    return wrap


def open_project(matrix_file: Path | None, compat_file: Path | None, *, writes_state: bool = False) -> Project:
    """The project; with ``writes_state`` its .dlbase/ folder (logs, reports, records,
    wheelhouse) must be writable, checked before any work rather than after a build."""
    project = Project.discover(matrix=matrix_file, compat=compat_file)
    if writes_state:
        from dlbase.core.fileerrors import writable_dir

        writable_dir(project.state_dir)
    return project


def parse_labels(items: tuple[str, ...]) -> dict[str, str]:
    """--label KEY=VALUE options (repeatable) as a dict; a malformed one is a usage error."""
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"'{item}' is not KEY=VALUE", param_hint="--label")
        labels[key] = value
    return labels


def variant_spec(project: Project, variant: str | None):  # -> dlbase.define.spec.BuildSpec
    """The named variant's build spec, or the matrix default's when none is named."""
    from dlbase.define.spec import BuildSpec

    v = project.matrix.get(variant) if variant else project.matrix.default_variant
    return BuildSpec.of(project.compat, v)


def registry_client(host: str):  # -> dlbase.registry.client.RegistryClient
    """A client for ``host`` with the credentials `docker login` (or the environment) holds
    for it: the one place the CLI pairs the daemon-free client with docker's config."""
    from dlbase.engine import credentials
    from dlbase.registry.client import RegistryClient

    return RegistryClient(host, credentials=credentials.for_registry(host))
