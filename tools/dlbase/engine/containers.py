"""Containers: run to completion, keep one running (testinfra, Jupyter), exec, read a
file, export a filesystem. Every container dlbase makes carries ``dlbase.managed`` and
is removed on every way out (exit, timeout, Ctrl-C, error)."""

from __future__ import annotations

import contextlib
import io
import posixpath
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import requests
from docker import errors as docker_errors
from docker.types import DeviceRequest

from dlbase.core import errors
from dlbase.engine.daemon import Daemon, api_message, is_connection_error

#: On every container (and base image) dlbase makes: `dlbase`'s clean-up may remove them.
MANAGED_LABEL = "dlbase.managed"
#: On the containers of `dlbase run` and of the launcher's captured runs (`bench data`), value
#: "true": what a Ctrl-C'd or killed run may leave, found by ``dlbase.run=true``.
LAUNCHED_LABEL = "dlbase.run"
#: On the containers of one `dlbase verify`, value that run's id: its clean-up removes
#: exactly its own containers (a Jupyter container of a killed host half), not another run's.
VERIFY_RUN_LABEL = "dlbase.verify-run"
LOG_TAIL_LINES = 20


def gpu_requests(count: int | None) -> list[DeviceRequest] | None:
    """The device request for ``count`` GPUs (-1: every GPU, as ``docker run --gpus all``;
    None: no GPU). The one place the NVIDIA runtime is asked for GPUs."""
    if count is None:
        return None
    if count == 0 or count < -1:
        raise ValueError(f"a GPU count is -1 (all) or positive, not {count}")
    return [DeviceRequest(count=count, capabilities=[["gpu"]])]


@dataclass(frozen=True)
class RunResult:
    """What a finished (or timed-out) container left: exit code and combined output.

    ``exit_code`` is None when the command timed out (``timed_out``) or when the run was
    detached (``container_id`` is then set and the daemon removes the container on exit).
    """

    exit_code: int | None
    output: str
    timed_out: bool = False
    container_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


@dataclass(frozen=True)
class StartedContainer:
    """A running container handed out by :meth:`Containers.started`."""

    id: str
    name: str
    ports: dict[str, list[tuple[str, int]]] = field(default_factory=dict)

    @property
    def testinfra_host(self) -> str:
        """The pytest-testinfra ``--hosts`` value for this container."""
        return f"docker://{self.name}"


class Containers(Daemon):
    """The container lifecycle."""

    def containers_with_label(self, label: str) -> list[dict[str, Any]]:
        with self._translate("list containers"):
            return self._api.containers(all=True, filters={"label": label})

    @contextlib.contextmanager
    def saved_image(self, image: str) -> Iterator[IO[bytes]]:
        """Yield a readable binary stream of ``docker save IMAGE`` (each layer's own tar, the
        config with its history, manifest.json), streamed in 1 MiB chunks: what
        `dlbase layers` reads to tell which files each layer adds or shadows."""
        self.inspect_image(image)  # a missing image is Missing here, not a 404 in mid-stream
        with self._translate(f"save {image}", missing=f"no image {image!r}"):
            chunks = self._api.get_image(image, chunk_size=1 << 20)
        yield _ChunkReader(iter(chunks), self)

    @contextlib.contextmanager
    def exported_filesystem(self, image: str, *, labels: dict[str, str] | None = None) -> Iterator[IO[bytes]]:
        """Yield a readable binary stream: the tar of a (never started) container's
        filesystem, i.e. the image's merged layers, streamed from the daemon in 1 MiB
        chunks so a 6 GB image is never held in memory. The container is removed on exit.
        """
        container_id = self._create(image, ["true"], environment=None, user=None, shm_size=None,
                                    ipc_mode=None, gpus=False, ports=None, labels=labels,
                                    network_mode="none", entrypoint=None, auto_remove=False)
        try:
            with self._translate(f"export the filesystem of {image}"):
                chunks = self._api.export(container_id, chunk_size=1 << 20)
            yield _ChunkReader(chunks, self)
        finally:
            self._remove_container(container_id)

    def run(self, image: str, command: str | list[str] | None = None, *,
            environment: dict[str, str] | None = None, user: str | None = None,
            timeout: float = 600, shm_size: str | None = None, ipc_mode: str | None = None,
            gpus: bool = False, ports: dict[str, int | None] | None = None, detach: bool = False,
            labels: dict[str, str] | None = None, network_mode: str | None = None,
            entrypoint: str | list[str] | None = None) -> RunResult:
        """Run a command to completion and return its exit code and combined output.

        The container is always removed: after it exits, on timeout (it is killed and
        ``timed_out`` is set), on Ctrl-C (-> Interrupted) and on any error. With
        ``detach=True`` it is started with auto-remove and its ID returned at once.
        ``ports`` maps ``"8888/tcp"`` to a host port, or None for a free one.
        """
        container_id = self._create(image, command, environment=environment, user=user,
                                    shm_size=shm_size, ipc_mode=ipc_mode, gpus=gpus, ports=ports,
                                    labels=labels, network_mode=network_mode,
                                    entrypoint=entrypoint, auto_remove=detach)
        if detach:
            try:
                self._start(container_id)
            except BaseException:
                self._remove_container(container_id)
                raise
            return RunResult(exit_code=None, output="", container_id=container_id)
        try:
            self._start(container_id)
            exit_code = self._wait(container_id, timeout)
            output = self._logs(container_id)
            return RunResult(exit_code=exit_code, output=output, timed_out=exit_code is None,
                             container_id=container_id)
        except KeyboardInterrupt:
            raise errors.Interrupted(f"interrupted while running {image}") from None
        finally:
            self._remove_container(container_id)

    @contextlib.contextmanager
    def started(self, image: str, command: str | list[str] | None = None, *,
                environment: dict[str, str] | None = None, user: str | None = None,
                shm_size: str | None = None, ipc_mode: str | None = None, gpus: bool = False,
                ports: dict[str, int | None] | None = None, labels: dict[str, str] | None = None,
                network_mode: str | None = None, entrypoint: str | list[str] | None = None,
                ready_timeout: float = 10) -> Iterator[StartedContainer]:
        """Yield a running container (for testinfra, a Jupyter probe); removed on exit.

        The default command keeps the container alive (``sleep infinity``) so host-side
        checks can exec into it. Fails with the container's log when it exits at once.
        """
        if command is None and entrypoint is None:
            command = ["sleep", "infinity"]
        container_id = self._create(image, command, environment=environment, user=user,
                                    shm_size=shm_size, ipc_mode=ipc_mode, gpus=gpus, ports=ports,
                                    labels=labels, network_mode=network_mode,
                                    entrypoint=entrypoint, auto_remove=False)
        try:
            self._start(container_id)
            yield self._wait_running(container_id, image, ready_timeout)
        except KeyboardInterrupt:
            raise errors.Interrupted(f"interrupted while using a container of {image}") from None
        finally:
            self._remove_container(container_id)

    def exec(self, container: str, command: str | list[str], *, user: str | None = None,
             environment: dict[str, str] | None = None) -> RunResult:
        """Run a command inside a running container (e.g. one from :meth:`started`)."""
        with self._translate(f"exec in container {container}", missing=f"no container {container!r}"):
            exec_id = self._api.exec_create(container, command, user=user or "",
                                            environment=environment)
            output = self._api.exec_start(exec_id)
            exit_code = self._api.exec_inspect(exec_id).get("ExitCode")
        return RunResult(exit_code=exit_code, output=_decode(output), container_id=container)

    def logs(self, container: str) -> str:
        return self._logs(container)

    def read_file(self, container: str, path: str, *, max_bytes: int = 64 * 1024 * 1024) -> bytes:
        """The bytes of one regular file inside a container (running or stopped), read
        through the archive API, so it works whatever the image has (no ``cat`` needed).
        Missing when there is no such file."""
        with self._archive(container, path, max_bytes) as tar:
            member = next((m for m in tar.getmembers() if m.isfile()), None)
            handle = tar.extractfile(member) if member is not None else None
            if handle is None:
                raise errors.Missing(f"{path} in container {container} is not a regular file")
            return handle.read()

    def read_files(self, container: str, path: str, *, max_bytes: int = 64 * 1024 * 1024) -> dict[str, bytes]:
        """Every regular file under the folder ``path`` of a container, by its path relative
        to ``path``: what a folder held when something ran from it (e.g. the image's suite)."""
        with self._archive(container, path, max_bytes) as tar:
            found = {}
            for member in tar.getmembers():
                handle = tar.extractfile(member) if member.isfile() else None
                if handle is not None:
                    found[member.name.split("/", 1)[1] if "/" in member.name else member.name] = handle.read()
            return found

    def read_image_file(self, image: str, path: str, *, max_bytes: int = 16 * 1024 * 1024,
                        labels: dict[str, str] | None = None) -> bytes:
        """One file of an image, read from a never-started container (no command of the image
        runs); symbolic links are followed inside the image (``/etc/os-release`` is one).
        Missing when there is no such file."""
        container_id = self._create(image, ["true"], environment=None, user=None, shm_size=None,
                                    ipc_mode=None, gpus=False, ports=None, labels=labels,
                                    network_mode="none", entrypoint=None, auto_remove=False)
        try:
            for _hop in range(8):
                with self._archive(container_id, path, max_bytes) as tar:
                    member = next(iter(tar.getmembers()), None)
                    if member is not None and member.issym():
                        target = member.linkname
                        path = target if target.startswith("/") else posixpath.normpath(
                            posixpath.join(posixpath.dirname(path), target))
                        continue
                    handle = tar.extractfile(member) if member is not None and member.isfile() else None
                    if handle is None:
                        raise errors.Missing(f"{path} in image {image} is not a regular file")
                    return handle.read()
            raise errors.Missing(f"{path} in image {image} is a chain of more than 8 symbolic links")
        finally:
            self._remove_container(container_id)

    @contextlib.contextmanager
    def _archive(self, container: str, path: str, max_bytes: int) -> Iterator[tarfile.TarFile]:
        """The archive API's tar of ``path`` in a container, held in memory up to ``max_bytes``."""
        with self._translate(f"copy {path} out of container {container}",
                             missing=f"no file {path!r} in container {container!r}"):
            stream, _stat = self._api.get_archive(container, path)
            buf = io.BytesIO()
            for chunk in stream:
                buf.write(chunk)
                if buf.tell() > max_bytes + 1024 * 1024:
                    raise errors.DlbaseError(f"{path} in container {container} is larger than {max_bytes} bytes")
        buf.seek(0)
        with tarfile.open(fileobj=buf) as tar:
            yield tar

    def _create(self, image: str, command: str | list[str] | None, *, environment: dict[str, str] | None,
                user: str | None, shm_size: str | None, ipc_mode: str | None, gpus: bool,
                ports: dict[str, int | None] | None, labels: dict[str, str] | None,
                network_mode: str | None, entrypoint: str | list[str] | None, auto_remove: bool) -> str:
        host_config = self._api.create_host_config(
            shm_size=shm_size, ipc_mode=ipc_mode, port_bindings=ports or None,
            network_mode=network_mode, auto_remove=auto_remove,
            device_requests=gpu_requests(-1 if gpus else None))
        all_labels = {**(labels or {}), MANAGED_LABEL: "true"}
        with self._translate(f"create a container from {image}", missing=f"no image {image!r}"):
            created = self._api.create_container(
                image, command=command, environment=environment, user=user,
                ports=_exposed_ports(ports), labels=all_labels,
                host_config=host_config, entrypoint=entrypoint, detach=True)
        return created["Id"]

    def _start(self, container_id: str) -> None:
        with self._translate("start a container"):
            try:
                self._api.start(container_id)
            except docker_errors.APIError as exc:
                message = api_message(exc)
                if "nvidia" in message or "could not select device driver" in message:
                    raise errors.Missing(f"GPU requested but the daemon cannot provide one: {message}",
                                         hint="install nvidia-container-toolkit, or run without GPUs") from None
                raise

    def _wait(self, container_id: str, timeout: float) -> int | None:
        """Exit code, or None (after killing the container) when ``timeout`` passed.

        docker-py implements the wait timeout as the HTTP read timeout, so a timeout is
        a requests exception (ReadTimeout, or ConnectionError wrapping urllib3's
        ReadTimeoutError depending on the adapter) -- told apart from a dead daemon by
        whether the daemon still answers a ping.
        """
        try:
            with self._translate("wait for a container"):
                try:
                    return int(self._api.wait(container_id, timeout=timeout)["StatusCode"])
                except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
                    if not self._answers():
                        raise
                    if "timed out" not in str(exc).lower() and not isinstance(exc, requests.exceptions.Timeout):
                        raise
        except errors.DaemonUnavailable:
            raise
        with self._translate("stop a timed-out container"):
            with contextlib.suppress(docker_errors.APIError):
                self._api.kill(container_id)
        return None

    def _wait_running(self, container_id: str, image: str, ready_timeout: float) -> StartedContainer:
        deadline = time.monotonic() + ready_timeout
        while True:
            with self._translate("inspect a container"):
                info = self._api.inspect_container(container_id)
            state = info.get("State") or {}
            if state.get("Running"):
                return StartedContainer(id=container_id, name=info["Name"].lstrip("/"),
                                        ports=_published_ports(info))
            if state.get("Status") in ("exited", "dead") or time.monotonic() > deadline:
                raise errors.VerifyFailed(
                    f"container of {image} is {state.get('Status')} (exit {state.get('ExitCode')})",
                    details=self._logs(container_id).splitlines()[-LOG_TAIL_LINES:])
            time.sleep(0.1)

    def _logs(self, container_id: str) -> str:
        with self._translate("read container logs"):
            return _decode(self._api.logs(container_id, stdout=True, stderr=True))

    def _remove_container(self, container_id: str) -> None:
        """Best-effort forced removal; already-gone containers (auto-remove) are fine."""
        with contextlib.suppress(Exception):
            self._api.remove_container(container_id, force=True, v=True)


class _ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (for tarfile's streaming mode)."""

    def __init__(self, chunks: Iterator[bytes], daemon: Daemon):
        self._chunks = iter(chunks)
        self._daemon = daemon
        self._buf = memoryview(b"")
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._pos >= len(self._buf):
            try:
                self._buf, self._pos = memoryview(next(self._chunks)), 0
            except StopIteration:
                return 0
            except Exception as exc:  # noqa: BLE001 - classified below
                if is_connection_error(exc):
                    raise self._daemon._unavailable(exc, during="a filesystem export") from None
                raise
        n = min(len(buffer), len(self._buf) - self._pos)
        buffer[:n] = self._buf[self._pos:self._pos + n]
        self._pos += n
        return n


def _exposed_ports(ports: dict[str, int | None] | None) -> list[int | tuple[int, str]] | None:
    """``{"8888/tcp": None}`` -> ``[(8888, "tcp")]``: docker-py appends "/tcp" to a plain
    string itself, so passing "8888/tcp" through would expose "8888/tcp/tcp" and the
    binding would silently not happen."""
    if not ports:
        return None
    exposed: list[int | tuple[int, str]] = []
    for key in ports:
        number, _, proto = str(key).partition("/")
        exposed.append((int(number), proto) if proto else int(number))
    return exposed


def _published_ports(info: dict[str, Any]) -> dict[str, list[tuple[str, int]]]:
    result: dict[str, list[tuple[str, int]]] = {}
    for private, bindings in ((info.get("NetworkSettings") or {}).get("Ports") or {}).items():
        result[private] = [(b.get("HostIp", ""), int(b["HostPort"])) for b in bindings or []]
    return result


def _decode(data: Any) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return str(data or "")
