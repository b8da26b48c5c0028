"""A server that accepts the connection and never answers must not hang dlbase: every HTTP
client gives up within 30 s with a message naming what did not answer.

The mechanism is tested against a real silent TCP server with a short timeout; the defaults
are read from the code so a later change above 30 s fails here."""

from __future__ import annotations

import inspect
import time

import pytest
import requests

from dlbase.define import lock
from dlbase.registry import client as registry
from dlbase.build import wheelhouse
from dlbase.define import simpleindex
from dlbase.core.errors import Unreachable
from tests.support.slow_server import dripping

LIMIT_S = 30


@pytest.fixture
def silent_server():
    """127.0.0.1:PORT that accepts connections and never sends a byte."""
    with dripping(silent=True) as url:
        yield int(url.rsplit(":", 1)[1])


def test_registry_gives_up_on_a_silent_registry(silent_server):
    client = registry.RegistryClient(f"127.0.0.1:{silent_server}", credentials=None, timeout=1)
    started = time.monotonic()
    with pytest.raises(Unreachable, match="did not answer"):
        client.manifest_digest("dlbase/pytorch", "latest")
    assert time.monotonic() - started < 10


def test_wheel_index_gives_up_on_a_silent_index(silent_server):
    with requests.Session() as session, pytest.raises(Unreachable, match="cannot be reached"):
        simpleindex.files(session, f"http://127.0.0.1:{silent_server}/simple", "numpy", 1)


def test_default_timeouts_are_at_most_30_seconds():
    assert inspect.signature(registry.RegistryClient).parameters["timeout"].default <= LIMIT_S
    checked = 0
    for name, fn in inspect.getmembers(wheelhouse, inspect.isfunction):
        param = inspect.signature(fn).parameters.get("timeout")
        if fn.__module__ == wheelhouse.__name__ and param is not None and param.default is not param.empty:
            assert param.default <= LIMIT_S, name
            checked += 1
    assert checked >= 1
    assert inspect.signature(lock.probe_index).parameters["timeout"].default <= LIMIT_S
    assert 'env.setdefault("UV_HTTP_TIMEOUT", "30")' in inspect.getsource(lock.compile_lock)
