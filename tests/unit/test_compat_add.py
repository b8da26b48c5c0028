"""`dlbase compat add`: a release's compat entry read from wheel metadata, against a fake
simple index on 127.0.0.1 that serves REAL metadata files (tests/unit/data/wheel-metadata,
read from PyPI). The index serves them as PEP 658 ``.metadata`` files, or (the fallback a
mirror needs) only as wheels that answer HTTP range requests."""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import re
import threading
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from dlbase.core.errors import ExitCode
from dlbase.define import compat as compat_mod
from dlbase.define import compat_add

DATA = Path(__file__).parent / "data" / "wheel-metadata"
# The CPython tags torch publishes per release on PyPI (the fixture is the cp313 wheel's
# METADATA; a release's METADATA is the same text for every tag, so it is served for each).
TORCH_TAGS = {"2.14.1": ("cp310", "cp311", "cp312", "cp313", "cp314"), "2.15.0": ("cp311", "cp312", "cp313", "cp314"),
              "2.6.0": ("cp39", "cp310", "cp311", "cp312", "cp313"), "2.9.0": ("cp310", "cp311", "cp312", "cp313")}


def _files() -> dict[str, dict[str, str]]:
    """project -> {wheel filename: METADATA text}."""
    out: dict[str, dict[str, str]] = {}
    for path in sorted(DATA.glob("*.whl.metadata")):
        filename = path.name.removesuffix(".metadata")
        project = filename.split("-", 1)[0].replace("_", "-")
        text = path.read_text()
        names = [filename]
        version = filename.split("-")[1]
        if project == "torch":
            names = [re.sub(r"cp313-cp313", f"{t}-{t}", filename) for t in TORCH_TAGS[version]]
        elif "cp313-cp313" in filename:  # companions: the same METADATA under the other CPython tags
            names = [filename.replace("cp313-cp313", f"{t}-{t}") for t in ("cp39", "cp310", "cp311", "cp312", "cp313")]
        for name in names:
            out.setdefault(project, {})[name] = text
    return out


def _wheel(filename: str, metadata: str) -> bytes:
    name, version = filename.split("-")[:2]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{name}/__init__.py", "# " + "x" * 200_000)  # something before the metadata
        zf.writestr(f"{name}-{version}.dist-info/METADATA", metadata)
    return buf.getvalue()


@contextlib.contextmanager
def fake_index(*, pep658: bool) -> Iterator[tuple[str, list[str]]]:
    """(simple index URL, request log) of a PEP 691 index holding the fixture wheels."""
    files = _files()
    log: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, code: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
            self.do_GET()

        def do_GET(self) -> None:  # noqa: N802
            log.append(f"{self.command} {self.path} {self.headers.get('Range', '')}".strip())
            m = re.fullmatch(r"/simple/([^/]+)/", self.path)
            if m:
                project = m.group(1)
                if project not in files:
                    return self._send(404, b"not found", "text/plain")
                body = {"meta": {"api-version": "1.1"}, "name": project,
                        "files": [{"filename": f, "url": f"/files/{f}", "hashes": {}} for f in files[project]]}
                return self._send(200, json.dumps(body).encode(), "application/vnd.pypi.simple.v1+json")
            m = re.fullmatch(r"/files/(.+?)(\.metadata)?", self.path)
            if m:
                filename, is_meta = m.group(1), bool(m.group(2))
                project = filename.split("-", 1)[0].replace("_", "-")
                text = files.get(project, {}).get(filename)
                if text is None or (is_meta and not pep658):
                    return self._send(404, b"not found", "text/plain")
                if is_meta:
                    return self._send(200, text.encode(), "text/plain")
                blob = _wheel(filename, text)
                rng = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
                if rng:
                    lo, hi = int(rng.group(1)), min(int(rng.group(2)), len(blob) - 1)
                    return self._send(206, blob[lo:hi + 1], "application/zip",
                                      {"Content-Range": f"bytes {lo}-{hi}/{len(blob)}"})
                if self.command == "HEAD":
                    return self._send(200, blob, "application/zip", {"Accept-Ranges": "bytes"})
                return self._send(403, b"whole-wheel downloads are what this avoids", "text/plain")
            self._send(404, b"not found", "text/plain")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple", log
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def index() -> Iterator[tuple[str, list[str]]]:
    with fake_index(pep658=True) as served:
        yield served


# ------------------------------------------------------------------------ deriving
def test_cuda13_release_facts_come_from_torch_and_cuda_toolkit_metadata(index):
    url, log = index
    d = compat_add.derive("2.14.1", index_url=url, python="3.13")
    assert (d.line, d.cuda, d.cudnn, d.nccl, d.triton, d.cublas) == (
        "cu130", "13.0", "9.24.0.43", "2.30.7", "3.8.0", "13.1.1.3")
    assert d.python == ["3.10", "3.11", "3.12", "3.13", "3.14"]
    assert d.sources["cuda"].endswith("cuda-toolkit[cublas,cudart,cufft,cufile,cupti,curand,cusolver,cusparse,"
                                      "nvjitlink,nvrtc,nvtx]==13.0.3")
    assert "PEP 658" in d.sources["cudnn"] and "cuda_toolkit-13.0.3.0" in d.sources["cublas"]
    assert not any(line.startswith("GET /files/") and not line.split()[1].endswith(".metadata") for line in log), \
        "a wheel itself was downloaded although the index serves its metadata"


def test_unpinned_torchvision_pairs_by_the_torch_series_its_metadata_starts_at(index):
    """torchvision 0.29.x says only torch>=2.14.0; the newest patch of that series pairs."""
    url, _ = index
    d = compat_add.derive("2.14.1", index_url=url, python="3.13")
    assert d.torchvision == "0.29.2" and "torch>=2.14.0" in d.sources["torchvision"]


def test_no_torchaudio_pairs_when_the_newest_series_is_older(index):
    url, _ = index
    d = compat_add.derive("2.14.1", index_url=url, python="3.13")
    assert d.torchaudio is None
    assert "torchaudio 2.11.1 requires torch>=2.11" in d.sources["torchaudio"]


def test_cuda12_release_with_exact_companion_pins(index):
    url, _ = index
    d = compat_add.derive("2.6.0", index_url=url, python="3.13")
    assert (d.line, d.cuda, d.cudnn, d.nccl, d.triton, d.cublas) == (
        "cu124", "12.4", "9.1.0.70", "2.21.5", "3.2.0", "12.4.5.8")
    assert (d.torchvision, d.torchaudio) == ("0.21.0", "2.6.0")
    assert d.python == ["3.9", "3.10", "3.11", "3.12", "3.13"]


def test_an_older_patch_of_the_series_pairs_when_the_newest_pins_the_next_torch(index):
    """torchvision 0.24.1 pins torch 2.9.1; torch 2.9.0's pair is 0.24.0 of the same series."""
    url, _ = index
    d = compat_add.derive("2.9.0", index_url=url, python="3.13")
    assert (d.torchvision, d.torchaudio, d.line, d.cudnn) == ("0.24.0", "2.9.0", "cu128", "9.10.2.21")


def test_the_facts_match_the_hand_written_2_6_0_row(index, raw_compat):
    """The committed 2.6.0 cu124 row was written by hand; the wheel says the same."""
    url, _ = index
    d = compat_add.derive("2.6.0", index_url=url, python="3.13")
    row = raw_compat["torch"]["2.6.0"]
    assert d.line == row["pypi_default"]
    assert d.line_entry() | {"cublas": None} == row["lines"]["cu124"] | {"cublas": None}
    assert (d.torchvision, d.torchaudio, d.python) == (row["torchvision"], row["torchaudio"], row["python"])


def test_range_reads_stand_in_when_the_index_serves_no_metadata_files():
    with fake_index(pep658=False) as (url, log):
        d = compat_add.derive("2.14.1", index_url=url, python="3.13")
    assert (d.cudnn, d.torchvision) == ("9.24.0.43", "0.29.2")
    assert "HTTP range" in d.sources["cudnn"]
    assert any("Range: bytes=" in line or "bytes=" in line for line in log)


def test_release_without_a_published_torchvision_is_refused(index):
    url, _ = index
    with pytest.raises(Exception) as info:
        compat_add.derive("2.15.0", index_url=url, python="3.13")
    err = info.value
    assert getattr(err, "exit_code", None) == ExitCode.INVALID_INPUT
    assert "no torchvision pair" in err.message
    assert any("newest torchvision 0.29.2 requires torch>=2.14.0" in d for d in err.details)


def test_a_given_companion_that_excludes_the_release_is_refused(index):
    url, _ = index
    with pytest.raises(Exception) as info:
        compat_add.derive("2.15.0", index_url=url, python="3.13", torchvision="0.21.0")
    assert "requires torch==2.6.0, which excludes torch 2.15.0" in info.value.message


# ------------------------------------------------------------------------ the verb
def _drop_release(path: Path, torch: str) -> None:
    text = path.read_text()
    start = text.index(f'  "{torch}":')
    rest = re.search(r"^  \S", text[start + 3:], re.M)
    path.write_text(text[:start] + (text[start + 3 + rest.start():] if rest else ""))


def test_compat_add_writes_the_entry_and_is_idempotent(index, project_copy, cli):
    url, _ = index
    compat_file = project_copy / "images" / "compat.yaml"
    _drop_release(compat_file, "2.14.1")
    assert "2.14.1" not in compat_mod.load(compat_file).releases
    res = cli("compat", "add", "torch==2.14.1", "--index", url, "--python", "3.13", "--json")
    assert res.code == 0, res.output
    body = res.json()
    assert body["written"] and "torch 2.14.1: new entry" in body["changes"]
    rel = compat_mod.load(compat_file).releases["2.14.1"]
    assert (rel.torchvision, rel.torchaudio, rel.pypi_default) == ("0.29.2", None, "cu130")
    assert rel.lines["cu130"] == compat_mod.WheelLine("cu130", "13.0", "9.24.0.43", "2.30.7", "3.8.0", "13.1.1.3")
    assert "torchvision-0.29.2" in rel.sources["torchvision"]
    text = compat_file.read_text()
    assert '"2.14.1":' in text and 'cuda: "13.0"' in text, "versions must be quoted (YAML reads 13.0 as a float)"
    assert "full feature set. [cuda-rn]" in text and "# [pypi-meta]" in text, "the round trip keeps comments"
    again = cli("compat", "add", "torch==2.14.1", "--index", url, "--python", "3.13")
    assert again.code == 0 and "already says this" in again.output
    assert cli("check").code == 0


def test_compat_add_refuses_a_line_whose_hand_kept_facts_are_missing(index, project_copy, cli):
    url, _ = index
    compat_file = project_copy / "images" / "compat.yaml"
    _drop_release(compat_file, "2.14.1")
    text = compat_file.read_text().replace('  "13.0": {min_driver: "580.65.06"}', "")
    text = re.sub(r"\n  cu130: \[sm_[^\n]*", "", text)
    compat_file.write_text(text)
    res = cli("compat", "add", "torch==2.14.1", "--index", url, "--python", "3.13")
    assert res.code == ExitCode.INVALID_INPUT, res.output
    assert 'cuda: "13.0"' in res.err and "arch_lists: cu130" in res.err
    assert compat_file.read_text() == text, "nothing half-written"


@pytest.mark.parametrize("spec, needle", [("torch>=2.14", "does not name one torch release"),
                                           ("torchvision==0.29.2", "does not name one torch release"),
                                           ("torch==9.9.9", "torch 9.9.9 is not on"),
                                           ("torch==2.15.0", "no torchvision pair")])
def test_compat_add_bad_input_is_exit_2(index, project_copy, cli, spec, needle):
    url, _ = index
    before = (project_copy / "images" / "compat.yaml").read_text()
    res = cli("compat", "add", spec, "--index", url)
    assert res.code == ExitCode.INVALID_INPUT, res.output
    assert needle in res.err and "Traceback" not in res.output
    assert (project_copy / "images" / "compat.yaml").read_text() == before


def test_compat_add_unreachable_index_is_exit_5(project_copy, cli):
    res = cli("compat", "add", "torch==2.14.1", "--index", "http://127.0.0.1:9/simple", "--json")
    assert res.code == ExitCode.UNREACHABLE, res.output
    body = json.loads(res.out)  # one JSON document on failure too
    assert body["ok"] is False and body["exit_code"] == 5 and "--index" in body["hint"]


@pytest.mark.parametrize("url, needle", [("ftp://pypi.example.org/simple", "ftp:// is not fetched"),
                                         ("http://pypi.example.org/simple", "plain http to another host"),
                                         ("file:///srv/simple", "file:// is not fetched"),
                                         ("pypi.org/simple", "not an http(s) URL")])
def test_compat_add_refuses_an_index_scan_update_refuses(project_copy, cli, url, needle):
    """One URL policy (core.urlpolicy) for every fetch dlbase makes itself: before, compat add
    sent ftp:// to requests (an internal error) and read facts over plain http from anywhere."""
    before = (project_copy / "images" / "compat.yaml").read_text()
    res = cli("compat", "add", "torch==2.14.1", "--index", url, "--json")
    assert res.code == ExitCode.INVALID_INPUT, res.output
    body = json.loads(res.out)
    assert needle in body["message"] and "--index" in body["message"], body
    assert (project_copy / "images" / "compat.yaml").read_text() == before
    scan = cli("scan", "--update", "--db", str(project_copy / "db"), "--base-url", url, "--json")
    assert scan.code == ExitCode.INVALID_INPUT and needle in json.loads(scan.out)["message"], scan.output
    assert not (project_copy / "db").exists()
