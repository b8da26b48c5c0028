"""`dlbase key generate`: the signing key pair, in cosign's own file format."""

from __future__ import annotations

from pathlib import Path

import click

from dlbase.cli import ui
from dlbase.cli.commands._signing import passphrase
from dlbase.cli.commands.common import json_option
from dlbase.core.errors import InvalidInput
from dlbase.trust import keys


def _out_folder(_ctx: click.Context, _param: click.Parameter, value: str) -> Path:
    """The folder for the pair, checked before the passphrase is asked for. An empty value
    is refused rather than read as "here": a stray ``--out "$KEY_DIR"`` with the variable
    unset must not drop a private key into whatever folder the shell is in (often a
    checkout, where it can be committed)."""
    if not value.strip():
        raise InvalidInput("--out is empty: it names the folder for cosign.key and cosign.pub",
                           hint="give a folder outside any repository, e.g. --out ~/.dlbase-keys "
                                "(without --out the pair goes into the current folder)")
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise InvalidInput(f"--out {value} is a file; --out names the folder to write "
                           f"{keys.PRIVATE_FILE} and {keys.PUBLIC_FILE} into",
                           hint=f"give a folder (it is created when missing), e.g. --out {path.parent / 'keys'}")
    return path


@click.group("key")
def command() -> None:
    """Signing keys (cosign's format: cosign.key encrypted with a passphrase, cosign.pub)."""


@command.command("generate")
@click.option("--out", "out_dir", default=".", show_default=True, callback=_out_folder,
              help="folder for cosign.key and cosign.pub (created when missing; keys are never overwritten)")
@json_option
def generate(out_dir: Path, as_json: bool) -> None:
    """Write a new ECDSA P-256 key pair: cosign.key (mode 0600, encrypted with the passphrase
    from DLBASE_SIGNING_PASSWORD or a prompt) and cosign.pub (give it to everyone who pulls)."""
    secret = passphrase(confirm=True)
    pair = keys.generate()
    private, public = keys.write_pair(pair, secret, out_dir)
    body = {"ok": True, "private_key": str(private), "public_key": str(public),
            "fingerprint": keys.fingerprint(pair.public)}
    if as_json:
        ui.emit_json(body)
        return
    ui.out.print(f"private key: {private} (keep secret; mode 0600)\npublic key:  {public}\n"
                 f"fingerprint: {body['fingerprint']}")
    ui.info("next: `dlbase push IMAGE --registry HOST --sign " + str(private) + "`; "
            "researchers run `dlbase trust REF --key " + str(public) + "`")
