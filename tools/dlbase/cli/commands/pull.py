"""`dlbase pull REF --key PUB | --policy FILE`: the checks of `dlbase trust`, then a pull by digest."""

from __future__ import annotations

import click

from dlbase.cli import ui
from dlbase.cli.commands import _trustview
from dlbase.cli.commands.common import json_option
from dlbase.cli.commands.trust import policy_from, policy_options
from dlbase.cli.progress import TransferProgress
from dlbase.core import reference
from dlbase.engine import Engine
from dlbase.engine import credentials
from dlbase.registry.client import api_host


@click.command("pull")
@click.argument("ref")
@policy_options
@json_option
def command(ref: str, as_json: bool, **policy_args) -> None:
    """Check REF like `dlbase trust`, then pull the digest that was checked (the tag is
    resolved once, so it cannot move between the check and the pull)."""
    reference.parse(ref, where="REF")  # a malformed REF is exit 2 before the daemon or a registry is asked
    policy = policy_from(**policy_args)
    engine = Engine()
    engine.ping()
    body = _trustview.check(ref, policy)
    if not as_json:
        _trustview.print_table(body)
    pinned = reference.parse(body["pinned"], where="REF")
    creds = credentials.for_registry(api_host(pinned))
    progress = TransferProgress(as_json)
    progress.say(f"pulling {body['pinned']} (download and unpack)")  # ticks, with the layers' bytes
    try:
        image_id = engine.pull(pinned.name, body["digest"], on_event=progress.event,
                               auth_config={"username": creds[0], "password": creds[1]} if creds else None)
    finally:
        progress.close()
    body["image_id"] = image_id
    if as_json:
        ui.emit_json(body)
        return
    ui.out.print(f"pulled {body['pinned']} -> {image_id}")
