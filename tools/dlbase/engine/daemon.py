"""The connection to the daemon, and turning docker/requests exceptions into typed errors.

Every other module of the engine reaches the daemon through :class:`Daemon`: its lazily
made client, :meth:`Daemon._translate` (docker-py exceptions -> :mod:`dlbase.core.errors`) and
the "is it still there?" probes that tell a broken stream from a daemon that went away.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import time
from collections.abc import Iterator
from typing import Any

import docker
import requests
import urllib3
from docker import errors as docker_errors

from dlbase.core import deadline as deadlines
from dlbase.core import errors
from dlbase.core import validate

DEFAULT_ENDPOINT = "unix:///var/run/docker.sock"
START_HINT = "run `sudo tools/host/setup.sh` or start dockerd"
REMOTE_HINT = ("start the daemon that should listen there, or unset DOCKER_HOST to use the local one "
               "(`sudo tools/host/setup.sh` starts it)")
# How long a broken stream waits for the daemon to answer again before calling it gone.
GONE_PROBE_S = 3.0
#: Seconds the first contact (the API version, a ping) may wait for an answer. A daemon
#: (or a socket, a proxy) that accepts and never answers otherwise held every verb for the
#: client's 120 s read timeout, twice in `doctor`, with no line; a live daemon answers
#: these in milliseconds. $DLBASE_NET_DEADLINE overrides it, as for every network wait.
PROBE_S = 20.0


def endpoint_from_env() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_ENDPOINT


def is_connection_error(exc: BaseException) -> bool:
    """True for every shape in which "the daemon is not there" reaches us.

    docker-py wraps some of them in DockerException ("Error while fetching server API
    version: ..."), requests raises ConnectionError for a dead socket or port, and a
    daemon dying mid-stream surfaces as ChunkedEncodingError, or -- docker-py reads the
    build stream from the raw urllib3 response, which requests does not wrap -- as
    urllib3's ProtocolError ("Connection broken: IncompleteRead") or http.client's
    IncompleteRead. Whether the daemon is really gone is then decided by pinging it.
    """
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                        requests.exceptions.ChunkedEncodingError,
                        urllib3.exceptions.ProtocolError, http.client.HTTPException,
                        ConnectionError, FileNotFoundError)):
        return True
    if isinstance(exc, docker_errors.APIError):
        return False
    if isinstance(exc, docker_errors.DockerException):
        text = str(exc)
        return "Error while fetching server API version" in text or "Connection" in text
    return False


def short_cause(exc: BaseException) -> str:
    """The reason a connection failed, in a few words, not docker-py's nested reprs."""
    text = str(exc)
    for needle, words in (("FileNotFoundError", "no socket file there"),
                          ("No such file or directory", "no socket file there"),
                          ("Connection refused", "connection refused"),
                          ("Permission denied", "permission denied (use sudo or join the docker group)"),
                          ("Name or service not known", "unknown host name"),
                          ("timed out", "timed out"),
                          ("IncompleteRead", "connection broken mid-stream (IncompleteRead)"),
                          ("Connection broken", "connection broken mid-stream"),
                          ("Connection reset", "connection reset")):
        if needle in text:
            return words
    return text if len(text) <= 160 else text[:157] + "..."


def api_message(exc: docker_errors.APIError) -> str:
    explanation = exc.explanation
    if isinstance(explanation, bytes):
        explanation = explanation.decode(errors="replace")
    return str(explanation or exc).strip()


class Daemon:
    """The client, error translation and liveness probes every engine part shares.

    The client is created lazily: constructing an engine never touches the daemon, so a
    CLI can build one up front and only fail (with a clear message) when it needs Docker.
    """

    def __init__(self, base_url: str | None = None, *, timeout: int = 120):
        validate.docker_host(base_url or os.environ.get("DOCKER_HOST"))  # exit 2 before docker-py sees it
        self._base_url = base_url
        self._timeout = timeout
        self._probe = deadlines.seconds(PROBE_S)
        self._client_obj: docker.DockerClient | None = None

    @property
    def endpoint(self) -> str:
        """The daemon address this engine talks to, for messages."""
        return self._base_url or endpoint_from_env()

    def _unavailable(self, cause: BaseException | None = None, *, during: str | None = None,
                     details: list[str] | None = None) -> errors.DaemonUnavailable:
        what = f"Docker daemon at {self.endpoint} "
        what += f"went away during {during}" if during else "is not reachable"
        if cause is not None and not during and "timed out" in str(cause).lower():
            what = f"Docker daemon at {self.endpoint} accepts connections but did not answer within {self._probe:g}s"
        remote = self._base_url is not None or "DOCKER_HOST" in os.environ
        lines = [f"cause: {short_cause(cause)}"] if cause else []
        return errors.DaemonUnavailable(what, hint=REMOTE_HINT if remote and self.endpoint != DEFAULT_ENDPOINT
                                        else START_HINT, details=lines + list(details or []))

    @property
    def _client(self) -> docker.DockerClient:
        if self._client_obj is None:
            try:
                # "auto" asks the daemon for its API version now: the short probe timeout
                with self._waiting():
                    if self._base_url:
                        client = docker.DockerClient(base_url=self._base_url, version="auto", timeout=self._probe)
                    else:
                        client = docker.from_env(version="auto", timeout=self._probe)
            except docker_errors.DockerException as exc:
                raise self._unavailable(exc) from None
            client.api.timeout = self._timeout  # builds, pulls and pushes keep the long one
            self._client_obj = client
        return self._client_obj

    @contextlib.contextmanager
    def _probing(self) -> Iterator[None]:
        """Calls in the block that must answer within the probe timeout (a ping)."""
        api = self._api
        api.timeout = self._probe
        try:
            with self._waiting():
                yield
        finally:
            api.timeout = self._timeout

    def _waiting(self):  # type: ignore[no-untyped-def]
        """Ticks the "still waiting" line while the daemon is slow to answer (the probe
        timeout, not this, ends the wait: docker-py's socket is not one dlbase can shut)."""
        return deadlines.within(f"the Docker daemon at {self.endpoint}", self._probe)

    @property
    def _api(self) -> docker.APIClient:
        return self._client.api

    @contextlib.contextmanager
    def _translate(self, action: str, *, missing: str | None = None) -> Iterator[None]:
        """Turn docker/requests exceptions raised inside the block into typed errors."""
        try:
            yield
        except errors.DlbaseError:
            raise
        except docker_errors.NotFound as exc:
            raise errors.Missing(f"{missing or action}: {api_message(exc)}") from None
        except docker_errors.APIError as exc:
            raise errors.DlbaseError(f"Docker daemon refused to {action}: {api_message(exc)}") from None
        except Exception as exc:  # noqa: BLE001 - classified below, re-raised otherwise
            if is_connection_error(exc):
                raise self._unavailable(exc) from None
            raise

    def ping(self) -> None:
        """Raise DaemonUnavailable (one line, naming the endpoint) unless the daemon answers."""
        with self._translate("answer a ping"), self._probing():
            self._api.ping()

    def version(self) -> dict[str, Any]:
        """The daemon's version document (Version, ApiVersion, ...)."""
        with self._translate("report its version"):
            return self._api.version()

    def has_nvidia_runtime(self) -> bool:
        """True when the daemon lists an ``nvidia`` runtime (nvidia-container-toolkit)."""
        with self._translate("report its runtimes"):
            info = self._api.info()
        return any("nvidia" in name for name in (info.get("Runtimes") or {}))

    def _answers(self) -> bool:
        try:
            with self._probing():
                self._api.ping()
        except Exception:  # noqa: BLE001 - any failure means "not answering"
            return False
        return True

    def _gone(self, within: float = GONE_PROBE_S) -> bool:
        """True when the daemon fails to answer a ping at any point within ``within`` s.

        A daemon being stopped closes streams (or kills a build step's container) a
        moment before it stops answering pings, so one ping right after a broken stream
        can still succeed; a daemon that answers every ping for the whole window is up.
        """
        deadline = time.monotonic() + within
        while True:
            if not self._answers():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)

    def _abort_stream(self, stream: Any) -> None:
        """Drop a streaming HTTP connection so the daemon sees the client go and cancels.

        Closing the decoding generator alone can leave the response's socket in the
        connection pool; closing the session's adapters really closes it (later calls
        open new connections).
        """
        with contextlib.suppress(Exception):
            stream.close()
        with contextlib.suppress(Exception):
            self._api.close()
