"""`dlbase trust REF --key PUB`: check the evidence an image carries in its registry."""

from __future__ import annotations

import click

from dlbase.cli import ui
from dlbase.cli.commands import _trustview
from dlbase.cli.commands._signing import public_keys
from dlbase.cli.commands.common import json_option
from dlbase.core import reference
from dlbase.trust.policy import Policy


def policy_options(fn):
    fn = click.option("--min-driver", default=None, metavar="VERSION",
                      help="a passing verification on a host with at least this NVIDIA driver")(fn)
    fn = click.option("--gpu-arch", default=None, metavar="sm_XX",
                      help="a passing verification on a GPU of this architecture (e.g. sm_90)")(fn)
    fn = click.option("--require-gpu-verified", is_flag=True,
                      help="at least one passing verification on a host with a GPU (GPU checks required)")(fn)
    fn = click.option("--key", "key_sources", multiple=True, required=True, metavar="PUB",
                      help="public key (cosign.pub, or env://NAME); repeat to accept several keys")(fn)
    return fn


@click.command("trust")
@click.argument("ref")
@policy_options
@json_option
def command(ref: str, key_sources: tuple[str, ...], require_gpu_verified: bool, gpu_arch: str | None,
            min_driver: str | None, as_json: bool) -> None:
    """Check REF (REGISTRY/REPO:TAG or @sha256:...): its signature, every attestation's
    signature and subject, and the policy. Exit 16 unsigned, 17 bad signature or wrong
    key, 18 a statement about another digest, 19 no verification meets the policy."""
    reference.parse(ref, where="REF")  # a malformed REF is exit 2 before keys are read or a registry asked
    policy = Policy(require_gpu_verified=require_gpu_verified, gpu_arch=gpu_arch, min_driver=min_driver)
    body = _trustview.check(ref, public_keys(key_sources), policy)
    if as_json:
        ui.emit_json(body)
        return
    _trustview.print_table(body)
    ui.info(f"pull exactly this image: docker pull {body['pinned']}  (or `dlbase pull {ref} --key ...`)")
