"""The one package that talks to the Docker daemon.

Everything else in dlbase (matrix, compat, render, lock, build orchestration, verify,
publish) goes through :class:`Engine`, so those modules are testable without a daemon
and another engine (buildx, a remote builder, a fake in tests) can stand in behind the
same small interface -- the idea of repo2docker's ``engine.py``.

One concern per module:

* :mod:`~dlbase.engine.daemon` -- the client, docker/requests exceptions -> typed errors,
  "is the daemon still there?" probes;
* :mod:`~dlbase.engine.images` -- inspect, labels, tag/untag, remove, history, import;
* :mod:`~dlbase.engine.buildstream` -- the classic builder's stream, parsed (pure);
* :mod:`~dlbase.engine.buildkitstream` -- buildx's rawjson stream, parsed into the same events (pure);
* :mod:`~dlbase.engine.builderchoice` -- BuildKit or classic, and why (pure);
* :mod:`~dlbase.engine.buildkit` -- a BuildKit build: buildx straight into the image store;
* :mod:`~dlbase.engine.build` -- ``build`` (either builder), and cleaning up after a failed classic one;
* :mod:`~dlbase.engine.transfer` -- push and pull streams;
* :mod:`~dlbase.engine.containers` -- run, started, exec, read_file, export;
* :mod:`~dlbase.engine.cleanup` -- label-based clean-up.
* :mod:`~dlbase.engine.credentials` -- the registry credentials `docker login` stored
  (docker-py's ``docker.auth``), handed to the daemon-free registry client by its callers.

Rules the package keeps:

* Nothing here prints. Progress goes to callbacks (``on_event``) and to log files;
  failures are the typed errors of :mod:`dlbase.core.errors`, carrying a message and a hint.
* docker/requests exceptions never escape: connection problems become
  :class:`~dlbase.core.errors.DaemonUnavailable` naming the endpoint, API errors become the
  closest typed error (``Missing`` for "not found", ``BuildFailed`` for builds, ...).
* Everything this package creates on the daemon carries a ``dlbase.*`` label, and the
  clean-up paths only ever remove objects that this process created or that carry a
  ``dlbase.*`` label, because the daemon is shared with other people's work.
"""

from __future__ import annotations

from dlbase.engine.build import BUILD_ID_LABEL, Builds
from dlbase.engine.buildstream import LOG_TAIL_LINES, BuildEvent
from dlbase.engine.cleanup import Cleanup, CleanupReport
from dlbase.engine.containers import LAUNCHED_LABEL, MANAGED_LABEL, VERIFY_RUN_LABEL, RunResult, StartedContainer
from dlbase.engine.daemon import DEFAULT_ENDPOINT, GONE_PROBE_S, REMOTE_HINT, START_HINT
from dlbase.engine.transfer import PushResult, TransferEvent, Transfers

__all__ = [
    "BUILD_ID_LABEL", "DEFAULT_ENDPOINT", "GONE_PROBE_S", "LAUNCHED_LABEL", "LOG_TAIL_LINES", "MANAGED_LABEL",
    "REMOTE_HINT", "START_HINT", "BuildEvent", "CleanupReport", "Engine", "PushResult",
    "RunResult", "StartedContainer", "TransferEvent", "VERIFY_RUN_LABEL",
]


class Engine(Builds, Transfers, Cleanup):
    """A narrow, typed facade over docker-py for the operations dlbase needs.

    The methods live in the concern modules above; this class only joins them, so
    callers keep one object (``Engine()``) and one import.
    """
