"""Key and passphrase handling shared by `key`, `push --sign` and `verify --attest`
(`trust` and `pull` read public keys through dlbase.trust.policyfile).

The passphrase comes from DLBASE_SIGNING_PASSWORD or, on a terminal, a prompt; with
neither (a CI job without the secret) the verb stops with one clear error instead of
waiting on stdin. Once read, the variable (and an ``env://`` private key's) is removed
from the environment: nothing the verb starts later inherits a signing secret.
"""

from __future__ import annotations

import os
import sys

import click

from dlbase.cli import ui
from dlbase.core.errors import InvalidInput
from dlbase.trust import keys


def passphrase(*, confirm: bool) -> bytes:
    value = os.environ.pop(keys.PASSWORD_ENV, None)
    if value is not None:
        if not value and confirm:
            raise InvalidInput(f"{keys.PASSWORD_ENV} is empty; a key needs a passphrase",
                               hint=f"set {keys.PASSWORD_ENV} to a long random secret")
        return value.encode()
    if not sys.stdin.isatty():
        raise InvalidInput(f"no passphrase: {keys.PASSWORD_ENV} is not set and there is no terminal to ask on",
                           hint=f"set {keys.PASSWORD_ENV} (a CI secret) or run on a terminal")
    value = click.prompt("passphrase for the signing key", hide_input=True, confirmation_prompt=confirm,
                         err=True)
    if not value and confirm:
        raise InvalidInput("an empty passphrase is not accepted for a new key")
    return value.encode()


def private_key(source: str) -> keys.KeyPair:
    """The key pair from a path or env://NAME; the passphrase as above. A key file other
    users can read gets a warning (it stays usable: it is encrypted)."""
    data, where = keys.read_source(source, "private key", secret=True)  # a missing file fails before the prompt
    warning = keys.exposure(source)
    if warning:
        ui.warn(warning)
    return keys.decrypt_private_key(data, passphrase(confirm=False), where)

