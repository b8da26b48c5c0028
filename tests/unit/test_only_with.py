"""Options that mean something only beside another are refused without it (exit 2).

`push --host-label X` without `--sign` was pushed without a word (the label went nowhere),
as was `scan --base-url URL` without `--update`; only `--scan-db` was refused, by an `if`
of its own. Now the rule is declared on the option (common.OnlyWith), and a test holds every
option whose help says "with --X" to it."""

from __future__ import annotations

import re

import click
import pytest

from dlbase.cli.app import app
from dlbase.cli.commands.common import OnlyWith

DEFAULT = "torch2.6-cu124-runtime-debian12"
SUBJECT = "127.0.0.1:5000/x/y@sha256:" + "a" * 64


def _commands() -> list[tuple[str, click.Command]]:
    ctx = click.Context(app)
    return [(name, app.get_command(ctx, name)) for name in app.list_commands(ctx)]


def test_every_option_whose_help_says_with_x_is_declared_so():
    found = 0
    for name, cmd in _commands():
        by_flag = {opt: p for p in cmd.params for opt in p.opts}
        for param in cmd.params:
            said = re.match(r"with (--[a-z-]+)", (getattr(param, "help", None) or ""))
            if not said:
                continue
            found += 1
            assert isinstance(param, OnlyWith), f"dlbase {name} {param.opts[0]}: its help says '{said.group(0)}'"
            assert by_flag[said.group(1)].name == param.only_with, f"dlbase {name} {param.opts[0]}"
    assert found >= 9  # push 2, verify 2, rebuild-check 2, scan 3


@pytest.mark.parametrize("args, says", [
    (["push", DEFAULT, "--registry", "127.0.0.1:5000", "--host-label", "ci-1"], "--host-label goes with --sign"),
    (["push", DEFAULT, "--registry", "127.0.0.1:5000", "--scan-db", "db"], "--scan-db goes with --sign"),
    (["verify", DEFAULT, "--host-label", "gpu-1"], "--host-label goes with --attest"),
    (["verify", DEFAULT, "--key", "cosign.key"], "--key goes with --attest"),
    (["scan", DEFAULT, "--key", "cosign.key"], "--key goes with --attest"),
    (["scan", DEFAULT, "--base-url", "https://example.org"], "--base-url goes with --update"),
    (["scan", DEFAULT, "--ecosystem", "PyPI"], "--ecosystem goes with --update"),
    (["rebuild-check", DEFAULT, "--host-label", "b2"], "--host-label goes with --attest"),
    (["rebuild-check", DEFAULT, "--key", "k"], "--key goes with --attest"),
])
def test_an_option_without_its_leader_is_exit_2(cli, monkeypatch, args, says):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")  # refused before any daemon is asked
    res = cli(*args, "--json")
    assert res.code == 2, res.output
    doc = res.json()
    assert says in doc["message"] and doc["exit_code"] == 2, doc


def test_the_leader_given_after_its_follower_still_counts(cli, monkeypatch, tmp_path):
    """click processes options in command-line order; the rule reads the parser's result."""
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    res = cli("scan", "--ecosystem", "PyPI", "--base-url", "http://127.0.0.1:1", "--update", "--db", str(tmp_path),
              "--json")
    assert res.code == 5 and "goes with" not in res.output, res.output  # got past the rule to the (closed) server


def test_an_environment_value_is_not_an_option_given(cli, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    monkeypatch.setenv("DLBASE_VULN_BASE_URL", "https://example.org")
    res = cli("scan", SUBJECT, "--json", "--db", "/nonexistent-db")
    assert "goes with" not in res.output
