"""`dlbase key generate`: the signing key pair, in cosign's own file format."""

from __future__ import annotations

from pathlib import Path

import click

from dlbase.cli import ui
from dlbase.cli.commands._signing import passphrase
from dlbase.cli.commands.common import json_option
from dlbase.trust import keys


@click.group("key")
def command() -> None:
    """Signing keys (cosign's format: cosign.key encrypted with a passphrase, cosign.pub)."""


@command.command("generate")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("."), show_default=True,
              help="folder for cosign.key and cosign.pub (never overwritten)")
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
