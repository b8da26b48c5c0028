"""A server that sends one byte every half second holds no network verb: each operation
has one overall deadline (set short here with $DLBASE_NET_DEADLINE), the user sees a
ticking line while it waits, and the error names the URL. Real sockets on 127.0.0.1."""

from __future__ import annotations

import time

import pytest
import requests

from dlbase.core import deadline as deadlines
from dlbase.core import httpget
from dlbase.core.errors import Unreachable
from dlbase.define import simpleindex
from tests.support.slow_server import dripping, silent_unix

DEADLINE = 2.0


@pytest.fixture(autouse=True)
def short_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(deadlines.ENV_VAR, str(DEADLINE))
    monkeypatch.setenv(deadlines.TICK_ENV_VAR, "0.5")


def test_the_deadline_ends_a_body_that_trickles_in() -> None:
    with dripping() as url, requests.Session() as session:
        started = time.monotonic()
        with pytest.raises(Unreachable, match=f"did not finish answering within {DEADLINE:g}s"):
            httpget.get(session, url + "/x", what="a test", cap=1 << 30)
    assert time.monotonic() - started < DEADLINE + 3


def test_the_listeners_hear_the_wait_tick() -> None:
    heard: list[tuple[str, float]] = []
    remove = deadlines.on_tick(lambda what, waited, _limit: heard.append((what, waited)))
    try:
        with dripping() as url, requests.Session() as session, pytest.raises(Unreachable):
            simpleindex.files(session, url + "/simple", "numpy", 1)
    finally:
        remove()
    assert len(heard) >= 2 and heard[0][0] == "the file list of numpy"


def _check(res, started: float, url: str) -> None:
    assert res.code == 5, res.out + res.err
    assert time.monotonic() - started < DEADLINE + 8
    assert "still waiting for" in res.err and url.split("//")[1] in res.err


def test_scan_update_gives_up_on_a_trickling_mirror(cli, tmp_path) -> None:
    with dripping() as url:
        started = time.monotonic()
        res = cli("scan", "--update", "--db", str(tmp_path / "db"), "--ecosystem", "PyPI", "--base-url", url)
    _check(res, started, url)
    assert "the previous database is unchanged" in res.err and list(tmp_path.iterdir()) == []


def test_compat_add_gives_up_on_a_trickling_index(cli) -> None:
    with dripping() as url:
        started = time.monotonic()
        res = cli("compat", "add", "torch==2.14.1", "--index", url + "/simple", "--dry-run")
    _check(res, started, url)


@pytest.fixture
def silent_daemon(tmp_path):
    """unix://SOCKET of a "Docker daemon" that accepts every connection and never answers."""
    with silent_unix(str(tmp_path / "docker.sock")) as url:
        yield url


@pytest.mark.parametrize("verb", [("doctor", "--json"), ("base", "bootstrap"), ("layers", "dlbase/pytorch:none")])
def test_a_daemon_that_never_answers_is_named_within_the_deadline(cli, monkeypatch, silent_daemon, verb) -> None:
    monkeypatch.setenv("DOCKER_HOST", silent_daemon)
    started = time.monotonic()
    res = cli(*verb)
    waited = time.monotonic() - started
    assert waited < DEADLINE * 2 + 6, f"{verb} took {waited:.0f}s"
    assert f"did not answer within {DEADLINE:g}s" in res.out + res.err, res.out + res.err
    assert res.code == (1 if verb[0] == "doctor" else 6), res.out + res.err


def test_lock_against_an_index_that_never_answers_ends_at_the_deadline_and_ticks(tmp_path) -> None:
    from dlbase.define import lock

    heard: list[str] = []
    remove = deadlines.on_tick(lambda what, _waited, _limit: heard.append(what))
    try:
        with dripping(silent=True) as url:
            spec = lock.LockSpec(variant="slow", requirements=["six==1.16.0"], index_url=url + "/simple")
            started = time.monotonic()
            with pytest.raises(Unreachable, match=f"did not finish resolving within {DEADLINE:g}s"):
                lock.compile_lock(spec, tmp_path / "requirements.lock", cache_dir=tmp_path / "cache")
    finally:
        remove()
    assert time.monotonic() - started < DEADLINE + 6
    assert heard and "uv resolving slow" in heard[0] and not (tmp_path / "requirements.lock").exists()
