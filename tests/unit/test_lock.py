"""Unit tests for dlbase.define.lock: parsing, hashing, fingerprints, drift, atomic writes and
the classification of uv failures. No network: uv is replaced by a small fake script
where a resolution would be needed, and "unreachable" uses a closed loopback port."""

from __future__ import annotations

import socket
import sys
import textwrap
from pathlib import Path

import pytest

from dlbase.define import lock as lockmod
from dlbase.core.errors import Drift, ExitCode, InvalidInput, Missing, Unreachable
from dlbase.define.lock import (
    LockSpec,
    check_lock,
    compile_lock,
    lock_hash,
    parse_lock_text,
    read_lock,
)

H1 = "a" * 64
H2 = "b" * 64
H3 = "c" * 64

BODY = textwrap.dedent(f"""\
    numpy==2.2.6 \\
        --hash=sha256:{H1} \\
        --hash=sha256:{H2}
        # via
        #   -r requirements.in
        #   torchvision
    Opencv_Python.Headless==4.11.0.86 \\
        --hash=sha256:{H3}
        # via -r requirements.in
    """)


def spec(**kw) -> LockSpec:
    base = dict(variant="runtime", requirements=["numpy==2.2.6", "opencv-python-headless==4.11.0.86"],
                python_version="3.11", platform="x86_64-manylinux_2_28",
                index_url="https://pypi.org/simple", extra_index_urls=[])
    base.update(kw)
    return LockSpec(**base)


def write_lock(path: Path, s: LockSpec, body: str = BODY) -> Path:
    path.write_text(lockmod._header(s, s.fingerprint(), body) + body, encoding="utf-8")
    return path


def closed_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- parse


def test_parse_reads_pins_hashes_and_header(tmp_path: Path) -> None:
    p = write_lock(tmp_path / "requirements.lock", spec())
    lk = read_lock(p)
    assert lk.fingerprint == spec().fingerprint()
    assert (lk.python_version, lk.platform, lk.index_url) == ("3.11", "x86_64-manylinux_2_28",
                                                              "https://pypi.org/simple")
    assert [(x.name, x.version) for x in lk.packages] == [
        ("numpy", "2.2.6"), ("Opencv_Python.Headless", "4.11.0.86")]
    assert lk.packages[0].hashes == [f"sha256:{H1}", f"sha256:{H2}"]
    assert lk.get("opencv-python-headless") is lk.packages[1]


def test_parse_accepts_extras_markers_and_option_lines() -> None:
    text = (f"--index-url https://pypi.org/simple\n"
            f"uvicorn[standard]==0.30.1 ; python_version >= '3.8' \\\n    --hash=sha256:{H1}\n")
    lk = parse_lock_text(text)
    assert lk.fingerprint is None
    assert [(p.name, p.version) for p in lk.packages] == [("uvicorn", "0.30.1")]


@pytest.mark.parametrize("body, what", [
    ("numpy>=2\n", "not an exact"),
    ("numpy==2.2.6\n", "no sha256 hash"),
    (f"six==1.16.0 --hash=sha256:{H1}\nsix==1.17.0 --hash=sha256:{H2}\n", "pinned twice"),
    (f"six==1.16.0 --hash=sha256:{H1[:40]}\n", "malformed hash"),
    (f"six==1.16.0 --hash=sha256:{H1} --hash=sha256:\n", "malformed hash"),
])
def test_parse_rejects_what_pip_cannot_install_with_hashes(body: str, what: str) -> None:
    with pytest.raises(Drift, match=what):
        parse_lock_text(body, source="x.lock")


def test_read_missing_file_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(Missing) as ei:
        read_lock(tmp_path / "nope.lock")
    assert ei.value.hint


# ---------------------------------------------------------------- lock_hash


def test_lock_hash_ignores_header_comments_and_order(tmp_path: Path) -> None:
    a = write_lock(tmp_path / "a.lock", spec())
    b = tmp_path / "b.lock"
    # other header, no annotations, other order, other hash order
    b.write_text(f"# something else entirely\n"
                 f"opencv-python-headless==4.11.0.86 --hash=sha256:{H3}\n"
                 f"numpy==2.2.6 --hash=sha256:{H2} --hash=sha256:{H1}\n")
    assert lock_hash(a) == lock_hash(b)
    assert len(lock_hash(a)) == 12 and int(lock_hash(a), 16) >= 0


def test_lock_hash_changes_with_what_gets_installed(tmp_path: Path) -> None:
    a = write_lock(tmp_path / "a.lock", spec())
    b = write_lock(tmp_path / "b.lock", spec(), BODY.replace("2.2.6", "2.2.5"))
    c = write_lock(tmp_path / "c.lock", spec(), BODY.replace(H3, "d" * 64))
    assert len({lock_hash(a), lock_hash(b), lock_hash(c)}) == 3


# ---------------------------------------------------------------- fingerprint / drift


def test_fingerprint_ignores_order_spelling_and_variant_name() -> None:
    a = spec()
    b = spec(variant="renamed", requirements=["opencv-python-headless == 4.11.0.86", " numpy==2.2.6"],
             index_url="https://pypi.org/simple/")
    assert a.fingerprint() == b.fingerprint()
    assert len(a.fingerprint()) == 64


@pytest.mark.parametrize("change", [
    dict(requirements=["numpy==2.2.5", "opencv-python-headless==4.11.0.86"]),
    dict(requirements=["numpy==2.2.6"]),
    dict(python_version="3.12"),
    dict(platform="aarch64-manylinux_2_28"),
    dict(index_url="https://example.invalid/simple"),
    dict(extra_index_urls=["https://download.pytorch.org/whl/cu118"]),
])
def test_fingerprint_changes_with_resolution_inputs(change: dict) -> None:
    assert spec(**change).fingerprint() != spec().fingerprint()


def test_check_lock_current(tmp_path: Path) -> None:
    p = write_lock(tmp_path / "requirements.lock", spec())
    assert check_lock(spec(), p).fingerprint == spec().fingerprint()


def test_check_lock_missing_file_is_drift(tmp_path: Path) -> None:
    with pytest.raises(Drift) as ei:
        check_lock(spec(), tmp_path / "requirements.lock")
    assert ei.value.hint == "dlbase lock runtime"
    assert ei.value.exit_code == ExitCode.DRIFT


def test_check_lock_stale_is_drift(tmp_path: Path) -> None:
    p = write_lock(tmp_path / "requirements.lock", spec())
    with pytest.raises(Drift, match="stale") as ei:
        check_lock(spec(python_version="3.12"), p)
    assert ei.value.hint == "dlbase lock runtime"


def test_check_lock_without_header_is_drift(tmp_path: Path) -> None:
    p = tmp_path / "requirements.lock"
    p.write_text(BODY)
    with pytest.raises(Drift, match="content hash|fingerprint"):
        check_lock(spec(), p)


# ---------------------------------------------------------------- compile (fake uv)

FAKE_UV = textwrap.dedent("""\
    import os, sys
    args = sys.argv[1:]
    out = args[args.index("--output-file") + 1]
    if os.environ.get("FAKE_UV_SEEN") and os.path.exists(out):
        with open(out) as src, open(os.environ["FAKE_UV_SEEN"], "w") as dst:
            dst.write(src.read())
    with open(os.environ["FAKE_UV_ARGS"], "w") as fh:
        fh.write("\\n".join(args))
    mode = os.environ["FAKE_UV_MODE"]
    if mode == "ok":
        with open(out, "w") as fh:
            fh.write(os.environ["FAKE_UV_BODY"])
        print("Resolved 2 packages in 1ms", file=sys.stderr)
        sys.exit(0)
    with open(out, "w") as fh:
        fh.write("numpy==2.2.6 \\\\\\n    --hash=sha256:")   # a half-written lock
    if mode == "conflict":
        print("error: No solution found when resolving dependencies", file=sys.stderr)
        print("  cause: Because you require numpy==2.2.6 and numpy<2, we can conclude that "
              "your requirements are unsatisfiable.", file=sys.stderr)
        sys.exit(1)
    print("error: Request failed after 3 retries in 8.6s", file=sys.stderr)
    print("  cause: Failed to fetch: https://mirror.example/simple/numpy/", file=sys.stderr)
    print("  cause: dns error", file=sys.stderr)
    sys.exit(2)
    """)


@pytest.fixture
def fake_uv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "fake_uv.py"
    script.write_text(FAKE_UV)
    args = tmp_path / "uv-args.txt"
    monkeypatch.setattr(lockmod, "find_uv", lambda: [sys.executable, str(script)])
    monkeypatch.setenv("FAKE_UV_ARGS", str(args))
    monkeypatch.setenv("FAKE_UV_BODY", BODY)
    return args


def _leftovers(d: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name not in keep)


def test_compile_writes_header_and_uses_the_right_uv_flags(tmp_path: Path, fake_uv: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_UV_MODE", "ok")
    out = tmp_path / "out" / "requirements.lock"
    lines: list[str] = []
    s = spec(extra_index_urls=["https://extra.example/simple"])
    res = compile_lock(s, out, say=lines.append, probe=False)
    text = out.read_text()
    head = text.splitlines()[:4]
    assert head[0] == "# GENERATED by dlbase lock — do not edit. Regenerate: dlbase lock runtime"
    assert head[1] == f"# dlbase-lock-fingerprint: {s.fingerprint()}"
    assert head[2] == f"# dlbase-lock-content: {lockmod.content_hash(BODY)}"
    assert head[3] == "# python: 3.11  platform: x86_64-manylinux_2_28  index: https://pypi.org/simple"
    assert text.splitlines()[4] == "# extra-index: https://extra.example/simple"
    assert text.endswith(BODY)
    assert lines == ["Resolved 2 packages in 1ms"]
    assert res.lock_hash == lock_hash(out) and res.fingerprint == s.fingerprint()
    assert [p.name for p in res.packages] == ["numpy", "Opencv_Python.Headless"]
    check_lock(s, out)
    args = fake_uv.read_text().splitlines()
    for flag in ("--generate-hashes", "--no-header", "--no-config"):
        assert flag in args
    assert args[args.index("--python-version") + 1] == "3.11"
    assert args[args.index("--python-platform") + 1] == "x86_64-manylinux_2_28"
    assert args[args.index("--index-url") + 1] == "https://pypi.org/simple"
    assert args[args.index("--extra-index-url") + 1] == "https://extra.example/simple"
    assert args[args.index("--index-strategy") + 1] == "unsafe-best-match"
    assert args[args.index("--only-binary") + 1] == ":all:"
    assert _leftovers(out.parent, {"requirements.lock"}) == []


@pytest.mark.parametrize("mode, error", [("conflict", InvalidInput), ("network", Unreachable)])
@pytest.mark.parametrize("existing", [True, False])
def test_failed_compile_leaves_no_partial_file(tmp_path: Path, fake_uv: Path,
                                               monkeypatch: pytest.MonkeyPatch, mode: str,
                                               error: type, existing: bool) -> None:
    monkeypatch.setenv("FAKE_UV_MODE", mode)
    out = tmp_path / "requirements.lock"
    if existing:
        write_lock(out, spec())
    before = out.read_bytes() if existing else None
    with pytest.raises(error) as ei:
        compile_lock(spec(), out, probe=False)
    assert (out.read_bytes() if out.exists() else None) == before
    assert _leftovers(tmp_path, {"requirements.lock", "fake_uv.py", "uv-args.txt"}) == []
    err = ei.value
    assert "runtime" in err.message
    assert err.details, "uv's explanation must be carried in details"
    if mode == "conflict":
        assert any("unsatisfiable" in d for d in err.details)
    else:
        assert err.exit_code == ExitCode.UNREACHABLE
        assert "Traceback" not in "\n".join(err.details)


def test_existing_lock_is_given_to_uv_as_preferences(tmp_path: Path, fake_uv: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """uv keeps the pins of an existing --output-file; the header must not be passed on."""
    seen = tmp_path / "seen.txt"
    monkeypatch.setenv("FAKE_UV_SEEN", str(seen))
    monkeypatch.setenv("FAKE_UV_MODE", "ok")
    out = write_lock(tmp_path / "requirements.lock", spec())
    compile_lock(spec(), out, probe=False)
    assert seen.read_text() == BODY


def test_damaged_existing_lock_is_not_passed_to_uv(tmp_path: Path, fake_uv: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    seen = tmp_path / "seen.txt"
    monkeypatch.setenv("FAKE_UV_SEEN", str(seen))
    monkeypatch.setenv("FAKE_UV_MODE", "ok")
    out = tmp_path / "requirements.lock"
    out.write_text("numpy==2.2.6 \\\n    --hash=sha256:0123\n    --hash=sha256:\n")  # truncated
    compile_lock(spec(), out, probe=False)
    assert not seen.exists()
    assert out.read_text().endswith(BODY)


def test_upgrade_ignores_existing_pins(tmp_path: Path, fake_uv: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    seen = tmp_path / "seen.txt"
    monkeypatch.setenv("FAKE_UV_SEEN", str(seen))
    monkeypatch.setenv("FAKE_UV_MODE", "ok")
    out = write_lock(tmp_path / "requirements.lock", spec())
    compile_lock(spec(), out, probe=False, upgrade=True)
    assert not seen.exists()
    assert "--upgrade" in fake_uv.read_text().splitlines()


def test_empty_requirements_are_invalid(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        compile_lock(spec(requirements=[]), tmp_path / "x.lock")


# ---------------------------------------------------------------- unreachable (real uv)


def test_unreachable_index_is_named_fast(tmp_path: Path) -> None:
    out = tmp_path / "requirements.lock"
    for url in ("http://127.0.0.1:1/simple", f"http://127.0.0.1:{closed_port()}/simple"):
        with pytest.raises(Unreachable) as ei:
            compile_lock(spec(variant="runtime-cu118", index_url=url), out)
        assert "runtime-cu118" in ei.value.message and url in ei.value.message
        assert ei.value.hint
    assert not out.exists()


def test_unreachable_extra_index_is_the_one_named(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/whl/cu118"
    with pytest.raises(Unreachable) as ei:
        compile_lock(spec(extra_index_urls=[url]), tmp_path / "x.lock")
    assert url in ei.value.message


def test_unreachable_reported_by_uv_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the pre-flight probe, uv's own network failure is classified the same way."""
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    url = f"http://127.0.0.1:{closed_port()}/simple"
    out = tmp_path / "requirements.lock"
    with pytest.raises(Unreachable) as ei:
        compile_lock(spec(variant="v1", index_url=url), out, probe=False,
                     cache_dir=tmp_path / "uv-cache")
    assert "v1" in ei.value.message and url in ei.value.message
    assert any("Connection refused" in d or "connect" in d for d in ei.value.details)
    assert not out.exists()


# ---------------------------------------------------------------- integrity (issue 11)


def test_parse_rejects_a_lock_ending_on_a_continuation() -> None:
    cut = BODY.split("# via\n")[0].rstrip() + " \\\n"  # ends "--hash=... \" then nothing
    with pytest.raises(Drift, match="cut short"):
        parse_lock_text(cut, source="x.lock")


def test_check_detects_a_body_that_differs_from_the_header(tmp_path: Path) -> None:
    p = write_lock(tmp_path / "requirements.lock", spec())
    p.write_text(p.read_text().replace(H3, "d" * 64))
    with pytest.raises(Drift, match="does not hold what its header records"):
        check_lock(spec(), p)


def test_complete_check_requires_every_requirement_pinned(tmp_path: Path) -> None:
    s = spec(requirements=["numpy==2.2.6", "opencv-python-headless==4.11.0.86", "torch==2.6.0"])
    only_numpy = BODY.split("Opencv_Python")[0]
    p = write_lock(tmp_path / "requirements.lock", s, only_numpy)
    check_lock(s, p)  # header and content agree: a build accepts it
    with pytest.raises(Drift, match="opencv-python-headless is not pinned; torch is not pinned"):
        check_lock(s, p, complete=True)


def test_complete_check_requires_the_pinned_version_to_satisfy(tmp_path: Path) -> None:
    s = spec(requirements=["numpy>=2.3", "opencv-python-headless==4.11.0.86"])
    p = write_lock(tmp_path / "requirements.lock", s)
    with pytest.raises(Drift, match="numpy is pinned at 2.2.6, the variant needs >=2.3"):
        check_lock(s, p, complete=True)
    assert check_lock(spec(), write_lock(tmp_path / "ok.lock", spec()), complete=True).packages
