"""`dlbase key generate`: a signing key pair, in cosign's own file format.

Four roles use the same kind of key (the role is a property of the consumer's trust
policy, not of the key): the publisher's key signs images and the build's attestations;
a verifier's key (one per GPU host or fleet, made *on* that host) signs only its
verification results; a scanner's key (made where published images are re-scanned)
signs only scans; a rebuilder's key (a second builder) signs only rebuilt-identical
statements. The private half never leaves the machine that made it; what is
sent on is the public half, and for a verifier the policy entry that names it.
"""

from __future__ import annotations

from pathlib import Path

import click

from dlbase.cli import ui
from dlbase.cli.commands._signing import passphrase
from dlbase.cli.commands.common import json_option
from dlbase.core.errors import InvalidInput
from dlbase.trust import keys
from dlbase.trust.policy import LABEL_RE, PUBLISHER, REBUILDER, SCANNER, VERIFIER
from dlbase.trust.policyfile import STANDS_FOR


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


def policy_entry(role: str, label: str | None, public_pem: str) -> str:
    """The YAML a trust policy needs for this key (under publishers: or verifiers:)."""
    body = "\n".join("      " + line for line in public_pem.strip().splitlines())
    head = f"{role}s:\n  - " + (f"label: {label}\n    " if label else "")
    return f"{head}key: |\n{body}\n"


@command.command("generate")
@click.option("--out", "out_dir", default=".", show_default=True, callback=_out_folder,
              help="folder for cosign.key and cosign.pub (created when missing; keys are never overwritten)")
@click.option("--role", type=click.Choice([PUBLISHER, VERIFIER, SCANNER, REBUILDER]), default=PUBLISHER,
              show_default=True,
              help="publisher: signs images and build attestations; verifier: a GPU host or fleet that attests "
                   "its verification results (generate it on that host); scanner: a job that re-scans "
                   "published images (`dlbase scan REF@DIGEST --attest`); rebuilder: a second builder that "
                   "rebuilds published images from their commit (`dlbase rebuild-check VARIANT --attest REF`)")
@click.option("--label", default=None, metavar="LABEL",
              help="the name consumers' policies give this key (needed for every role but publisher, "
                   "e.g. h200-fleet)")
@json_option
def generate(out_dir: Path, role: str, label: str | None, as_json: bool) -> None:
    """Write a new ECDSA P-256 key pair: cosign.key (mode 0600, encrypted with the passphrase
    from DLBASE_SIGNING_PASSWORD or a prompt; it stays on this machine) and cosign.pub
    (send it to the publisher and to everyone who pulls)."""
    if role != PUBLISHER and not label:
        example = {VERIFIER: "h200-fleet", SCANNER: "nightly-rescan", REBUILDER: "second-builder"}[role]
        raise InvalidInput(f"--role {role} needs --label ({STANDS_FOR[role]} this key stands for)",
                           hint=f"e.g. dlbase key generate --role {role} --label {example} --out ~/.dlbase/{role}")
    if label is not None and not LABEL_RE.match(label):
        raise InvalidInput(f"--label {label!r} must be letters, digits, '.', '_' or '-' (at most 63)")
    secret = passphrase(confirm=True)
    pair = keys.generate()
    private, public = keys.write_pair(pair, secret, out_dir)
    entry = policy_entry(role, label, keys.public_pem(pair).decode())
    body = {"ok": True, "private_key": str(private), "public_key": str(public), "role": role, "label": label,
            "fingerprint": keys.fingerprint(pair.public), "policy_entry": entry}
    if as_json:
        ui.emit_json(body)
        return
    ui.out.print(f"private key: {private} (keep secret, on this machine only; mode 0600)\npublic key:  {public}\n"
                 f"fingerprint: {body['fingerprint']}")
    if role == VERIFIER:
        ui.info(f"send {public} (or the entry below) to the publisher; it goes under verifiers: in the trust "
                "policy consumers use. Attest with `dlbase verify REGISTRY/REPO@sha256:... --attest --require-gpu "
                f"--key {private} --host-label {label}`")
    elif role == SCANNER:
        ui.info(f"send {public} (or the entry below) to the publisher; it goes under scanners: in the trust "
                "policy consumers use. Re-scan with `dlbase scan REGISTRY/REPO@sha256:... --attest "
                f"--key {private} --db DIR`")
    elif role == REBUILDER:
        ui.info(f"send {public} (or the entry below) to the publisher; it goes under rebuilders: in the trust "
                "policy consumers use. Rebuild and vouch with `dlbase rebuild-check VARIANT --attest "
                f"REGISTRY/REPO@sha256:... --key {private} --host-label {label}`")
    else:
        ui.info("next: `dlbase push IMAGE --registry HOST --sign " + str(private) + "`; "
                "researchers run `dlbase trust REF --key " + str(public) + "`")
    ui.out.print(entry, markup=False, highlight=False)
