"""Stand-ins for docker-py's low-level API, for the engine's error paths in unit tests.

A live daemon cannot be made to drop a stream or die mid-build on demand (the
integration tests kill a private one for real: tests/integration/test_build_failures.py);
these fakes replay build streams and fail pings where a test needs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests
import urllib3
from dlbase.engine import Engine
from docker import errors as docker_errors


class FakeAPI:
    """Just enough of docker.APIClient for the build error paths."""

    def __init__(self, stream: list[dict] | Iterator[dict], *, alive: bool = True,
                 tags: dict[str, list[str]] | None = None):
        self._stream = stream
        self.alive = alive
        self.tags = tags or {}
        self.removed_images: list[str] = []
        self.removed_containers: list[str] = []
        self.build_kwargs: dict[str, Any] = {}

    def build(self, **kwargs: Any) -> Iterator[dict]:
        self.build_kwargs = kwargs
        return iter(self._stream)

    def ping(self) -> bool:
        if not self.alive:
            raise requests.exceptions.ConnectionError("connection refused")
        return True

    def inspect_image(self, ref: str) -> dict:
        if ref in self.removed_images:
            raise docker_errors.NotFound("gone")
        return {"Id": f"sha256:{ref}", "RepoTags": self.tags.get(ref, [])}

    def remove_image(self, ref: str, **_kwargs: Any) -> None:
        self.removed_images.append(ref)

    def remove_container(self, ref: str, **_kwargs: Any) -> None:
        self.removed_containers.append(ref)

    def containers(self, **_kwargs: Any) -> list:
        return []

    def close(self) -> None:
        pass


class FakeClient:
    def __init__(self, api: FakeAPI):
        self.api = api


def fake_engine(api: FakeAPI) -> Engine:
    engine = Engine(base_url="unix:///fake.sock")
    engine._client_obj = FakeClient(api)  # type: ignore[assignment]
    return engine


def stream(*lines: str) -> list[dict]:
    return [{"stream": line + "\n"} for line in lines]


def broken_stream(exc: Exception) -> Iterator[dict]:
    yield from stream("Step 1/2 : FROM x", " ---> aaaaaaaaaaaa", "Step 2/2 : RUN sleep 100",
                      " ---> Running in eeeeeeeeeeee")
    raise exc


class StoppingAPI(FakeAPI):
    """A daemon that still answers the first ``answers`` pings, then is gone."""

    def __init__(self, *args, answers: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.left = answers

    def ping(self) -> bool:
        self.left -= 1
        if self.left < 0:
            raise urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionRefusedError(111, "refused"))
        return True
