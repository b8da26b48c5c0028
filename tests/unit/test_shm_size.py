"""``--shm-size``: one grammar (dlbase.core.sizes), checked before the daemon is asked, and
zero refused, since Docker silently reads ``--shm-size 0`` as its 64 MB default."""

from __future__ import annotations

import json

import pytest

from dlbase.core import sizes, validate
from dlbase.core.errors import ExitCode, InvalidInput
from dlbase.engine import launcher

DEFAULT = "torch2.6-cu124-runtime-debian12"


@pytest.mark.parametrize("value", ["0", "0g", "0.0m", "0.0001k"])
def test_zero_is_refused_with_what_to_type_instead(value: str) -> None:
    with pytest.raises(InvalidInput) as info:
        sizes.shm_option(value)
    err = info.value
    assert err.exit_code == ExitCode.INVALID_INPUT
    assert "64 MB" in err.message and "--ipc host" in err.hint and sizes.DEFAULT_SHM in err.hint


@pytest.mark.parametrize("value", ["lots", "8 g", "1e3", "-1g", "", "8gib", "inf"])
def test_not_a_size_says_the_grammar(value: str) -> None:
    with pytest.raises(InvalidInput) as info:
        sizes.shm_option(value)
    assert "is not a size" in info.value.message and "8g" in info.value.hint


@pytest.mark.parametrize("value, daemon_gets", [("8g", "8g"), ("8GB", "8g"), ("1t", "1024g"), ("1.5g", "1536m"),
                                                ("65536k", "64m"), ("100", "100")])
def test_cli_check_and_launcher_give_the_daemon_the_same_canonical_value(value: str, daemon_gets: str) -> None:
    assert validate.size(value, where="--shm-size") == daemon_gets
    assert launcher.check_shm(value) == daemon_gets


@pytest.mark.parametrize("verb", [["run", "--shm-size", "0", "--json", DEFAULT, "--", "true"],
                                  ["verify", DEFAULT, "--shm-size", "0", "--json"],
                                  ["verify", DEFAULT, "--shm-size", "0g", "--json"]])
def test_cli_refuses_zero_before_the_daemon(cli, project_copy, monkeypatch, verb: list[str]) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")  # exit 6 if the daemon were asked first
    res = cli(*verb)
    assert res.code == int(ExitCode.INVALID_INPUT), res.output
    assert "Traceback" not in res.output
    doc = json.loads(res.out)
    assert doc["ok"] is False and "zero" in doc["message"] and "--ipc" in doc["hint"]
