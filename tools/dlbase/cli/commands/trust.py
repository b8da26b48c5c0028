"""`dlbase trust REF --key PUB | --policy FILE`: check the evidence an image carries in its registry."""

from __future__ import annotations

from pathlib import Path

import click

from dlbase.cli.paths import PathParam
from dlbase.cli import ui
from dlbase.cli.commands import _trustview
from dlbase.cli.commands.common import json_option
from dlbase.core import reference
from dlbase.trust import policyfile
from dlbase.trust.policy import TrustPolicy
from dlbase.vuln import severity
from dlbase.cli.helptext import with_exit_codes


def policy_options(fn):
    fn = click.option("--require-rebuilt", is_flag=True,
                      help="a rebuilt-identical statement by a rebuilder key: a second builder rebuilt the image "
                           "from its commit and got this digest (`dlbase rebuild-check VARIANT --attest REF`)")(fn)
    fn = click.option("--rebuilder", "rebuilder_specs", multiple=True, metavar="LABEL=PUB",
                      help="a second builder's public key: its rebuilt-identical statements count, nothing else "
                           "it signs; repeatable")(fn)
    fn = click.option("--scan-fail-on", default=None, metavar="SEVERITY",
                      type=click.Choice([lv.lower() for lv in severity.LEVELS], case_sensitive=False),
                      help="the newest scan must show no finding VEX does not answer at or above this severity")(fn)
    fn = click.option("--max-scan-age", default=None, metavar="AGE",
                      help="the newest scan by a publisher or scanner key must be at most this old (12h, 7d, 2w)")(fn)
    fn = click.option("--scanner", "scanner_specs", multiple=True, metavar="LABEL=PUB",
                      help="a scan job's public key: its scans (`dlbase scan REF@DIGEST --attest`) count, nothing "
                           "else it signs; repeatable")(fn)
    fn = click.option("--min-driver", default=None, metavar="VERSION",
                      help="a passing GPU verification on a host with at least this NVIDIA driver")(fn)
    fn = click.option("--gpu-arch", default=None, metavar="sm_XX",
                      help="a passing GPU verification on a GPU of this architecture (e.g. sm_90)")(fn)
    fn = click.option("--require-gpu-verified", is_flag=True,
                      help="at least one passing verification with the GPU checks run, signed by a verifier key")(fn)
    fn = click.option("--verifier", "verifier_specs", multiple=True, metavar="LABEL=PUB",
                      help="a verifier's public key (a GPU host or fleet): only verifiers' results meet the GPU "
                           "requirements; repeatable")(fn)
    fn = click.option("--key", "key_sources", multiple=True, metavar="PUB",
                      help="a publisher's public key (cosign.pub, or env://NAME): one publisher key, no other "
                           "requirement; repeat to accept several keys")(fn)
    fn = click.option("--policy", "policy_file", type=PathParam(path_type=Path), default=None, metavar="FILE",
                      help="trust policy YAML: publisher and verifier keys and what is required "
                           "(docs/trust-researchers.md); the other options add to it")(fn)
    return fn


def policy_from(policy_file: Path | None, key_sources: tuple[str, ...], verifier_specs: tuple[str, ...],
                require_gpu_verified: bool, gpu_arch: str | None, min_driver: str | None,
                scanner_specs: tuple[str, ...] = (), max_scan_age: str | None = None,
                scan_fail_on: str | None = None, rebuilder_specs: tuple[str, ...] = (),
                require_rebuilt: bool = False) -> TrustPolicy:
    """The policy of :func:`policy_options`' values (pass them as keywords)."""
    return policyfile.from_cli(policy_file, key_sources, verifier_specs, require_gpu_verified=require_gpu_verified,
                               gpu_arch=gpu_arch, min_driver=min_driver, scanner_specs=scanner_specs,
                               max_scan_age=max_scan_age, scan_fail_on=scan_fail_on,
                               rebuilder_specs=rebuilder_specs, require_rebuilt=require_rebuilt)


@click.command("trust")
@click.argument("ref")
@policy_options
@json_option
@with_exit_codes
def command(ref: str, as_json: bool, **policy_args) -> None:
    """Check REF (REGISTRY/REPO:TAG or @sha256:...): its signature, every attestation's
    signature and subject, and the policy. Exit {UNSIGNED} unsigned, {BAD_SIGNATURE} bad signature or
    wrong key, {WRONG_SUBJECT} a statement about another digest, {POLICY} the policy is not met,
    {WRONG_IDENTITY} signed for another repository or not for this tag."""
    reference.parse(ref, where="REF")  # a malformed REF is exit 2 before keys are read or a registry asked
    policy = policy_from(**policy_args)
    body = _trustview.check(ref, policy)
    if as_json:
        ui.emit_json(body)
        return
    _trustview.print_table(body)
    ui.info(f"pull exactly this image: docker pull {body['pinned']}  (or `dlbase pull {ref} --key ...`)")
