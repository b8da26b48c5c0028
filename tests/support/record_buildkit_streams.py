"""Record real `docker buildx build --progress rawjson` streams for the pure BuildKit
parser's unit tests (tests/unit/test_buildkitstream.py).

Run by hand on a machine with buildx, the containerd image store and the bootstrapped
base image (``python -m tests.support.record_buildkit_streams``); it rewrites
``tests/unit/data/buildkit-streams/*.rawjson``: buildx's stderr exactly as it came
(indented JSON objects, then buildx's plain-text error report on failure), plus
``NAME.meta.json`` with buildx's exit code and its ``--metadata-file``.

- ``success``        FROM, a RUN printing to stdout and stderr, a COPY, a RUN, no cache;
- ``cached``         the same build again: every step a cache hit;
- ``failed-step``    a RUN that prints to stderr and exits 3 after a passing RUN;
- ``template-warm``  the small project (the real templates, tiny wheels) rebuilt after a
                     ``tests/image`` edit: 15 steps, all but the last cached;
- ``interrupted``    SIGINT to buildx's process group while a RUN sleeps (Ctrl-C);
- ``zstd-export``    a 280 MB layer written as the engine writes an image now (``type=image``
                     into the containerd store, the zstd exporter attributes of
                     dlbase.core.layercompression): the exporter's phases, which rawjson
                     reports with a start and an end and nothing between. The image it
                     stores is removed again.

The command is the engine's (an OCI layout folder, ``tar=false``); the layouts go to a
temporary folder and are deleted; nothing is loaded or tagged.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from dlbase.build.wheelhouse import serve
from tests.support.small_project import make_small_project

BASE = "dlbase/debian:12-minbase"
OUT = Path(__file__).resolve().parents[1] / "unit" / "data" / "buildkit-streams"
EPOCH = "1700000000"


def buildx(context: Path, out: Path, *extra: str, dockerfile: str = "Dockerfile",
           interrupt_after: str | None = None) -> tuple[int, str, dict]:
    """Run one build; (exit code, stderr, metadata)."""
    meta = out / "meta.json"
    argv = ["docker", "buildx", "build", "--builder", "default", "--progress", "rawjson", "--provenance=false",
            "--sbom=false", "--network", "host", "--file", str(context / dockerfile), "--metadata-file", str(meta),
            "--output", f"type=oci,tar=false,dest={out / 'layout'},rewrite-timestamp=true", *extra, str(context)]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env={**os.environ, "SOURCE_DATE_EPOCH": EPOCH}, start_new_session=True)
    lines = []
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)
        if interrupt_after and interrupt_after in line:
            time.sleep(2)
            os.killpg(proc.pid, signal.SIGINT)
            interrupt_after = None
    code = proc.wait()
    data = json.loads(meta.read_text()) if meta.is_file() else {}
    meta.unlink(missing_ok=True)
    shutil.rmtree(out / "layout", ignore_errors=True)
    return code, "".join(lines), data


def zstd_export(context: Path) -> tuple[int, str, dict]:
    """One build into the daemon's store, as dlbase.engine.buildkit runs it; the image is removed."""
    from dlbase.core import layercompression

    meta = context / "meta.json"
    argv = ["docker", "buildx", "build", "--builder", "default", "--progress", "rawjson", "--provenance=false",
            "--sbom=false", "--no-cache", "--metadata-file", str(meta), "--label", "dlbase.purpose=recorded-stream",
            "--output", "type=image," + layercompression.exporter_attrs(layercompression.ZSTD), str(context)]
    proc = subprocess.run(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                          env={**os.environ, "SOURCE_DATE_EPOCH": EPOCH})
    data = json.loads(meta.read_text()) if meta.is_file() else {}
    if data.get("containerimage.digest"):
        subprocess.run(["docker", "image", "rm", data["containerimage.digest"]], capture_output=True)
    return proc.returncode, proc.stderr, data


def save(name: str, result: tuple[int, str, dict]) -> None:
    code, stderr, meta = result
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.rawjson").write_text(stderr)
    (OUT / f"{name}.meta.json").write_text(json.dumps({"returncode": code, "metadata": meta}, indent=2,
                                                       sort_keys=True) + "\n")
    print(f"{name}: exit {code}, {len(stderr.splitlines())} lines")


def main(only: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        out = tmp / "out"
        out.mkdir()
        big = tmp / "big"
        big.mkdir()
        (big / "Dockerfile").write_text(f"FROM {BASE}\nRUN head -c 20000000 /dev/urandom > /a && "
                                        "seq 1 30000000 > /b\n")
        save("zstd-export", zstd_export(big))
        if only == "zstd-export":  # `... record_buildkit_streams zstd-export`: this stream alone
            return
        small = tmp / "small"
        small.mkdir()
        (small / "Dockerfile").write_text(
            f"FROM {BASE}\nARG TOKEN=recorded\nRUN echo \"hello $TOKEN\" && echo to-stderr >&2\n"
            "COPY file.txt /file.txt\nRUN cat /file.txt\n")
        (small / "file.txt").write_text(f"recorded {time.time()}\n")
        save("success", buildx(small, out, "--no-cache"))
        save("cached", buildx(small, out))
        failing = tmp / "failing"
        failing.mkdir()
        (failing / "Dockerfile").write_text(
            f"FROM {BASE}\nRUN echo step-two-ok\nRUN echo \"about to fail\" >&2 && exit 3\nRUN echo never\n")
        save("failed-step", buildx(failing, out, "--no-cache"))
        sleeping = tmp / "sleeping"
        sleeping.mkdir()
        (sleeping / "Dockerfile").write_text(f"FROM {BASE}\nRUN echo going-to-sleep && sleep 60\n")
        save("interrupted", buildx(sleeping, out, "--no-cache", interrupt_after="going-to-sleep"))
        sp = make_small_project(tmp / "project")
        dockerfile = f"images/{sp.variant}/Dockerfile"
        with serve(sp.wheelhouse) as url:
            buildx(sp.root, out, "--build-arg", f"WHEELHOUSE={url}", dockerfile=dockerfile)
            with (sp.root / "tests" / "image" / "test_versions.py").open("a") as fh:
                fh.write("\n# edited by record_buildkit_streams\n")
            save("template-warm", buildx(sp.root, out, "--build-arg", f"WHEELHOUSE={url}", dockerfile=dockerfile))


if __name__ == "__main__":
    import sys

    main(sys.argv[1] if len(sys.argv) > 1 else None)
