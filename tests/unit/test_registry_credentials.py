"""Registry credentials as `docker login` leaves them: plain `auths`, or a credential
helper (`credsStore` for every registry, `credHelpers` per registry).

The helpers here are real programs on PATH speaking the docker-credential protocol
(`get` reads the server on stdin, prints {"Username", "Secret"}), as
docker-credential-pass or -ecr-login do."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from dlbase.engine import credentials

HOST = "127.0.0.1:5999"


def helper(bin_dir: Path, name: str, user: str, secret: str) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / f"docker-credential-{name}"
    script.write_text("#!/bin/sh\n"
                      '[ "$1" = get ] || exit 1\n'
                      "read server\n"
                      f'printf \'{{"ServerURL": "%s", "Username": "{user}", "Secret": "{secret}"}}\' "$server"\n')
    script.chmod(0o755)


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DLBASE_REGISTRY_USER", raising=False)
    monkeypatch.delenv("DLBASE_REGISTRY_PASSWORD", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")

    def write(config: dict) -> None:
        (tmp_path / "docker").mkdir(exist_ok=True)
        (tmp_path / "docker" / "config.json").write_text(json.dumps(config))

    return write, tmp_path / "bin"


def test_plain_auths_entry(docker_config) -> None:
    write, _ = docker_config
    write({"auths": {HOST: {"auth": base64.b64encode(b"alice:s3cret").decode()}}})
    assert credentials.for_registry(HOST) == ("alice", "s3cret")


def test_a_per_registry_credential_helper(docker_config) -> None:
    write, bin_dir = docker_config
    helper(bin_dir, "dlbasetest", "bob", "from-helper")
    write({"auths": {HOST: {}}, "credHelpers": {HOST: "dlbasetest"}})
    assert credentials.for_registry(HOST) == ("bob", "from-helper")


def test_the_default_credential_store(docker_config) -> None:
    write, bin_dir = docker_config
    helper(bin_dir, "dlbasestore", "carol", "from-store")
    write({"auths": {HOST: {}}, "credsStore": "dlbasestore"})
    assert credentials.for_registry(HOST) == ("carol", "from-store")


def test_no_entry_no_credentials(docker_config) -> None:
    write, _ = docker_config
    write({"auths": {"other.example:5000": {"auth": base64.b64encode(b"x:y").decode()}}})
    assert credentials.for_registry(HOST) is None


def test_the_environment_wins(docker_config, monkeypatch: pytest.MonkeyPatch) -> None:
    write, bin_dir = docker_config
    helper(bin_dir, "dlbasetest", "bob", "from-helper")
    write({"credHelpers": {HOST: "dlbasetest"}})
    monkeypatch.setenv("DLBASE_REGISTRY_USER", "env-user")
    monkeypatch.setenv("DLBASE_REGISTRY_PASSWORD", "env-pass")
    assert credentials.for_registry(HOST) == ("env-user", "env-pass")
