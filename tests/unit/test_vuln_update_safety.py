"""`scan --update` against hostile input: ecosystems that are paths, empty paths, a
failure half-way, a redirect from https to plain http. Real HTTP(S) servers on 127.0.0.1."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import ssl
import threading
import zipfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dlbase.core.errors import FileProblem, InvalidInput
from dlbase.vuln import db as db_mod
from dlbase.vuln import ecosystems, update
from dlbase.define.project import Project

DATA = Path(__file__).parent / "data" / "osv"


def _zip(path: Path, folder: Path, *, broken_member: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for record in sorted(folder.glob("*.json")):
            zf.write(record, record.name)
        if broken_member:
            zf.writestr("BROKEN-1.json", "{not json")


def _serve(site: Path, *, tls: ssl.SSLContext | None = None, redirect_to: str | None = None):
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(site), **kw)

        def do_GET(self):  # noqa: N802
            if redirect_to is not None:
                self.send_response(302)
                self.send_header("Location", redirect_to + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def site(tmp_path: Path):
    root = tmp_path / "site"
    _zip(root / "PyPI" / "all.zip", DATA / "pypi")
    _zip(root / "Debian:12" / "all.zip", DATA / "debian")
    server = _serve(root)
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_ecosystems_are_derived_from_the_matrix() -> None:
    matrix = Project.discover(root=Path(__file__).resolve().parents[2]).matrix
    assert ecosystems.of_matrix(matrix) == ("PyPI", "Debian:12", "Debian:13", "Ubuntu:22.04:LTS")
    assert ecosystems.of_os("ubuntu24.10") == "Ubuntu:24.10" and ecosystems.of_os("alpine3.20") is None


@pytest.mark.parametrize("name", ["/abs/elsewhere", "../x", "..", "PyPI/../../x", "pypi", ""])
def test_an_ecosystem_that_is_a_path_is_refused_and_nothing_is_written(cli, site, tmp_path: Path,
                                                                      name: str) -> None:
    _root, url = site
    work = tmp_path / "work"
    work.mkdir()
    res = cli("scan", "--update", "--db", str(work / "db"), "--ecosystem", name, "--base-url", url, "--json")
    assert res.code == 2, res.out + res.err
    assert "not an OSV ecosystem" in res.json()["message"] and "Debian:12" in res.json()["hint"]
    assert list(work.iterdir()) == [] and not (tmp_path / "x").exists()


def test_the_library_refuses_an_ecosystem_that_leaves_the_folder(site, tmp_path: Path) -> None:
    _root, url = site
    with pytest.raises(InvalidInput, match="not a folder name"):
        update.download(tmp_path / "db", ["../x"], base_url=url)
    assert not (tmp_path / "x").exists() and not (tmp_path / "db").exists()


@pytest.mark.parametrize("args", [("scan", "--update", "--db", ""), ("scan", "--from-lock", "--db", ""),
                                  ("scan", "--from-lock", "--db", "  "),
                                  ("scan", "--from-lock", "--db", "/x", "--vex", ""),
                                  ("check", "--matrix", ""), ("verify", "--junit", ""), ("lint", "")])
def test_an_empty_path_is_exit_2(cli, args, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = cli(*args)
    assert res.code == 2, res.out + res.err
    assert "is empty" in res.err and list(tmp_path.iterdir()) == []


def test_every_path_option_of_every_verb_refuses_an_empty_value() -> None:
    """No verb uses plain click.Path (which reads '' as the current folder)."""
    import click

    from dlbase.cli.app import app
    from dlbase.cli.paths import PathParam

    def walk(cmd: click.Command, ctx_name: str):
        for param in cmd.params:
            yield ctx_name, param
        for sub in getattr(cmd, "commands", {}).values():
            yield from walk(sub, f"{ctx_name} {sub.name}")

    plain = [f"{where} {p.name}" for where, p in walk(app, "dlbase")
             if isinstance(p.type, click.Path) and not isinstance(p.type, PathParam)]
    counted = [p for _w, p in walk(app, "dlbase") if isinstance(p.type, PathParam)]
    assert not plain and len(counted) >= 10


def test_a_failed_update_leaves_no_folder_it_made(site, tmp_path: Path) -> None:
    _root, url = site
    target = tmp_path / "new" / "deep" / "db"
    with pytest.raises(Exception, match="HTTP 404"):
        update.download(target, ["PyPI", "Debian:99"], base_url=url)
    assert list(tmp_path.iterdir()) == [tmp_path / "site"]


def test_a_failure_half_way_leaves_the_old_database_whole(site, tmp_path: Path) -> None:
    """The second archive arrives but cannot be indexed: the first must not be replaced either."""
    root, url = site
    folder = tmp_path / "db"
    update.download(folder, ["PyPI", "Debian:12"], base_url=url)
    (folder / "mine.json").write_bytes((DATA / "pypi" / sorted(p.name for p in (DATA / "pypi").glob("*.json"))[0]
                                        ).read_bytes())
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    _zip(root / "PyPI" / "all.zip", DATA / "debian")  # a new PyPI archive...
    _zip(root / "Debian:12" / "all.zip", DATA / "debian", broken_member=True)  # ...and a damaged record
    with pytest.raises(FileProblem, match="BROKEN-1.json"):
        update.download(folder, ["PyPI", "Debian:12"], base_url=url)
    after = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    _zip(root / "Debian:12" / "all.zip", DATA / "debian")
    update.download(folder, ["PyPI", "Debian:12"], base_url=url)  # a good update keeps mine.json
    assert (folder / "mine.json").is_file() and db_mod.load(folder).records >= 4


def _self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file


def test_a_redirect_from_https_to_http_is_refused(cli, site, tmp_path: Path, monkeypatch) -> None:
    _root, plain = site
    context, cert = _self_signed(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    secure = _serve(tmp_path, tls=context, redirect_to=plain)
    try:
        url = f"https://127.0.0.1:{secure.server_address[1]}"
        res = cli("scan", "--update", "--db", str(tmp_path / "db"), "--ecosystem", "PyPI", "--base-url", url,
                  "--json")
    finally:
        secure.shutdown()
    body = res.json()
    assert res.code == 11, body
    assert "https to plain http" in body["message"] and f"{plain}/PyPI/all.zip" in body["message"]
    assert not (tmp_path / "db").exists()


def test_a_db_that_is_a_link_stays_a_link(site, tmp_path: Path) -> None:
    _root, url = site
    real = tmp_path / "real-db"
    real.mkdir()
    link = tmp_path / "db"
    link.symlink_to(real)
    update.download(link, ["PyPI"], base_url=url)
    assert link.is_symlink() and (real / "PyPI" / "all.zip").is_file()


@pytest.mark.parametrize("previous, target, followed", [
    ("https://osv.example/a", "https://cdn.example/a", True),
    ("https://osv.example/a", "http://cdn.example/a", False),
    ("https://osv.example/a", "http://127.0.0.1:8000/a", False),
    ("http://127.0.0.1:8000/a", "http://127.0.0.1:9000/a", True),
    ("http://127.0.0.1:8000/a", "http://elsewhere.example/a", False),
    ("http://deb.debian.org/debian", "http://mirror.example/debian", True),  # no worse than the start
    ("http://deb.debian.org/debian", "ftp://mirror.example/debian", False),
])
def test_a_redirect_never_leads_somewhere_less_safe(previous: str, target: str, followed: bool) -> None:
    from dlbase.core import httpget
    from dlbase.core.errors import BadAnswer

    if followed:
        httpget._check_hop(previous, target)
    else:
        with pytest.raises(BadAnswer):
            httpget._check_hop(previous, target)
