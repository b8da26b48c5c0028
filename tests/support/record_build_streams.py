"""Record real classic-builder streams for the pure parser's unit tests.

Run by hand on a machine with the daemon and the bootstrapped base image
(``python -m tests.support.record_build_streams``); it rewrites
``tests/unit/data/build-streams/*.jsonl``. Each file holds the decoded chunks exactly
as docker-py yielded them, one JSON object a line; a stream that broke ends with a
``{"_raised": TYPE, "_message": TEXT}`` line (what the client saw instead of a chunk).

- ``success``       a three-step build that passes (FROM, RUN, COPY);
- ``failed-step``   a RUN step that exits 1 after printing to stderr;
- ``hash-mismatch`` the small project (real templates) served a wheel whose sha256 is
                    not the one its lock pins: pip's ``--require-hashes`` refuses it;
- ``daemon-gone``   a private dockerd (tests/support/second_daemon.py) is killed while a
                    step sleeps.

Everything built here carries the label ``dlbase.test=record-streams`` and is removed.
"""

from __future__ import annotations

import contextlib
import json
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import docker

from dlbase.engine.buildstream import BuildStreamParser
from dlbase.build.wheelhouse import serve
from tests.support import second_daemon
from tests.support.small_project import make_small_project, make_wheel

BASE = "dlbase/debian:12-minbase"
OUT = Path(__file__).resolve().parents[1] / "unit" / "data" / "build-streams"
LABEL = {"dlbase.test": "record-streams"}


def _record(api: docker.APIClient, name: str, *, stop: Any = None, **build: Any) -> list[dict]:
    chunks: list[dict] = []
    try:
        for chunk in api.build(rm=True, forcerm=True, decode=True, labels=LABEL, **build):
            chunks.append(chunk)
            if stop is not None:
                stop(chunk)
    except Exception as exc:  # noqa: BLE001 - recorded as what the client saw
        chunks.append({"_raised": f"{type(exc).__module__}.{type(exc).__qualname__}", "_message": str(exc)})
    _remove_created(api, chunks)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.jsonl").write_text("".join(json.dumps(c, sort_keys=True) + "\n" for c in chunks))
    print(f"{name}: {len(chunks)} chunks")
    return chunks


def _remove_created(api: docker.APIClient, chunks: list[dict]) -> None:
    """Remove the per-step images a failed build committed (the classic builder labels
    none of them), read off the stream by the parser under test."""
    parser = BuildStreamParser()
    with contextlib.suppress(Exception):
        for chunk in chunks:
            if "_raised" not in chunk:
                parser.feed(chunk)
    for image_id in reversed(parser.trace.created_images):
        with contextlib.suppress(Exception):
            api.remove_image(image_id)


def _context(tmp: Path, dockerfile: str) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "Dockerfile").write_text(dockerfile)
    (tmp / "file.txt").write_text("recorded\n")
    return tmp


def _remove_labelled(api: docker.APIClient) -> None:
    for c in api.containers(all=True, filters={"label": "dlbase.test=record-streams"}):
        api.remove_container(c["Id"], force=True)
    for img in sorted(api.images(all=True, filters={"label": "dlbase.test=record-streams"}),
                      key=lambda i: i.get("Created", 0), reverse=True):
        try:
            api.remove_image(img["Id"], force=True)
        except docker.errors.APIError:
            pass


def main() -> None:
    api = docker.APIClient(version="auto")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        try:
            _record(api, "success", nocache=True, path=str(_context(tmp / "ok", (
                f"FROM {BASE}\nRUN echo recording a build && echo to stderr >&2\nCOPY file.txt /file.txt\n"))))
            _record(api, "failed-step", nocache=True, path=str(_context(tmp / "bad", (
                f"FROM {BASE}\nCOPY file.txt /file.txt\nRUN echo boom >&2 && false\n"))))
            sp = make_small_project(tmp / "hash")
            make_wheel(sp.wheelhouse, payload="not what the lock pins")  # same file name, other bytes
            with serve(sp.wheelhouse) as url:
                _record(api, "hash-mismatch", path=str(sp.root), dockerfile=f"images/{sp.variant}/Dockerfile",
                        buildargs={"WHEELHOUSE": url}, network_mode="host")
        finally:
            _remove_labelled(api)
    if why := second_daemon.available():
        print(f"daemon-gone: not recorded ({why})")
        return
    with tempfile.TemporaryDirectory() as tmpdir, second_daemon.second_daemon() as daemon:
        daemon.load_image(BASE)
        private = docker.APIClient(base_url=daemon.endpoint, version="auto", timeout=120)

        def stop_when_sleeping(chunk: dict) -> None:
            if "sleeping" in str(chunk.get("stream", "")):
                threading.Timer(1.0, daemon.kill, kwargs={"sig": signal.SIGKILL, "wait": 0}).start()

        _record(private, "daemon-gone", stop=stop_when_sleeping, path=str(_context(Path(tmpdir) / "gone", (
            f"FROM {BASE}\nCOPY file.txt /file.txt\nRUN echo sleeping && sleep 60\n"))))
        time.sleep(0.5)


if __name__ == "__main__":
    main()
