"""The registry client against odd answers from a real HTTP server on 127.0.0.1.

Each row changes one answer of a fake registry that otherwise serves a signed image
well, runs the real `dlbase trust` (or the client call that reads that answer) and
checks the exit code and what the message says. The baseline row proves the fake is a
registry dlbase accepts, so every other row fails for its own odd answer only."""

from __future__ import annotations

import json
import resource
import threading
import time

import pytest

from dlbase.core.errors import ExitCode, RegistryError, Unreachable
from dlbase.registry import auth
from dlbase.registry.client import RegistryClient
from dlbase.registry.limits import DEADLINE_S, MANIFEST_MAX
from dlbase.trust import keys, store
from tests.support.odd_registry import REPO, TAG, answer, drip, odd_registry, signed_image

HTML = b"<!DOCTYPE html><html><body>Please log in to the corporate proxy</body></html>"
NOISE = bytes(range(256)) * 4


@pytest.fixture(scope="module")
def pair():
    return keys.generate()


@pytest.fixture
def pub(tmp_path, pair):
    path = tmp_path / "cosign.pub"
    path.write_bytes(keys.public_pem(pair))
    return str(path)


@pytest.fixture
def reg(pair):
    with odd_registry() as r:
        r.digest = signed_image(r, pair)
        yield r


def manifest_path(ref: str) -> str:
    return f"/v2/{REPO}/manifests/{ref}"


def sig_manifest(layers) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": store.OCI_MANIFEST, "layers": layers}).encode()


def no_digest_header(r):
    """HEAD of the tag without Docker-Content-Digest, so the client GETs the body."""
    r.on("HEAD", manifest_path(TAG), answer(200))


# name -> (set up the odd answer, exit code, words of the message)
CASES = {
    "manifest is HTML with 200": (
        lambda r: (no_digest_header(r), r.on("GET", manifest_path(TAG), answer(200, HTML))),
        ExitCode.REGISTRY, "answered an HTML page, not JSON"),
    "manifest is random bytes with 200": (
        lambda r: (no_digest_header(r), r.on("GET", manifest_path(TAG), answer(200, NOISE))),
        ExitCode.REGISTRY, "answered binary data, not JSON"),
    "Docker-Content-Digest is not a digest": (
        lambda r: r.on("HEAD", manifest_path(TAG), answer(200, headers={"Docker-Content-Digest": "sha256:" + "z" * 64})),
        ExitCode.REGISTRY, "is not a digest"),
    "token endpoint answers HTML": (
        lambda r: (r.on("*", "/v2/", answer(401, headers={
            "WWW-Authenticate": f'Bearer realm="http://{r.host}/token",service="fake"'})),
            r.on("GET", "/token", answer(200, HTML))),
        ExitCode.REGISTRY, "token service"),
    "token endpoint answers JSON without a token": (
        lambda r: (r.on("*", "/v2/", answer(401, headers={
            "WWW-Authenticate": f'Bearer realm="http://{r.host}/token"'})),
            r.on("GET", "/token", answer(200, b'{"expires_in": 60}'))),
        ExitCode.REGISTRY, "carries no token"),
    "challenge without a realm": (
        lambda r: r.on("*", "/v2/", answer(401, headers={"WWW-Authenticate": 'Bearer service="fake"'})),
        ExitCode.REGISTRY, "without a realm"),
    "redirect loop": (
        lambda r: r.on("HEAD", manifest_path(TAG), answer(302, headers={"Location": manifest_path(TAG)})),
        ExitCode.REGISTRY, "redirects"),
    "redirect ping-pong": (
        lambda r: (r.on("HEAD", manifest_path(TAG), answer(307, headers={"Location": "/elsewhere"})),
                   r.on("HEAD", "/elsewhere", answer(307, headers={"Location": manifest_path(TAG)}))),
        ExitCode.REGISTRY, "in a loop"),
    ".sig manifest is []": (
        lambda r: r.on("GET", manifest_path(store.sig_tag(r.digest)), answer(200, b"[]")),
        ExitCode.REGISTRY, "must be a JSON object, not an array"),
    ".sig manifest has no layers": (  # was "not signed" (16): a damaged .sig is the registry's problem
        lambda r: r.on("GET", manifest_path(store.sig_tag(r.digest)), answer(200, b'{"schemaVersion": 2}')),
        ExitCode.REGISTRY, "holds no layer"),
    ".sig manifest's layers are empty": (
        lambda r: r.on("GET", manifest_path(store.sig_tag(r.digest)), answer(200, sig_manifest([]))),
        ExitCode.REGISTRY, "holds no layer"),
    ".sig layer lacks digest": (
        lambda r: r.on("GET", manifest_path(store.sig_tag(r.digest)),
                       answer(200, sig_manifest([{"mediaType": "x", "size": 1}]))),
        ExitCode.REGISTRY, "has no digest"),
    ".sig layers are strings": (
        lambda r: r.on("GET", manifest_path(store.sig_tag(r.digest)), answer(200, sig_manifest(["sha256:abc"]))),
        ExitCode.REGISTRY, "not a descriptor object"),
    ".sig layers is an object": (
        lambda r: r.on("GET", manifest_path(store.sig_tag(r.digest)), answer(200, sig_manifest({"a": 1}))),
        ExitCode.REGISTRY, "layers is an object, not an array"),
    ".sig layer digest is upper-case hex": (
        lambda r: r.on("GET", manifest_path(store.sig_tag(r.digest)),
                       answer(200, sig_manifest([{"mediaType": "x", "size": 1, "digest": "sha256:" + "A" * 64}]))),
        ExitCode.REGISTRY, "upper-case hex"),
    "blob served with other content": (
        lambda r: r.blobs.update({d: b"tampered" for d in list(r.blobs)}),
        ExitCode.REGISTRY, "with other content"),
    "tags list is a JSON list": (
        lambda r: r.on("GET", f"/v2/{REPO}/tags/list", answer(200, b'["1"]')),
        ExitCode.REGISTRY, "must be a JSON object, not an array"),
    "tags list is HTML": (
        lambda r: r.on("GET", f"/v2/{REPO}/tags/list", answer(200, HTML)),
        ExitCode.REGISTRY, "HTML page"),
    "tags are not strings": (
        lambda r: r.on("GET", f"/v2/{REPO}/tags/list", answer(200, b'{"tags": [1, 2]}')),
        ExitCode.REGISTRY, "not a list of strings"),
    "tags Link points at itself": (
        lambda r: r.on("GET", f"/v2/{REPO}/tags/list", answer(200, b'{"tags": []}', {
            "Link": f'</v2/{REPO}/tags/list?n=1000>; rel="next"'})),
        ExitCode.REGISTRY, "pages in a loop"),
    "tags Link to another server": (
        lambda r: r.on("GET", f"/v2/{REPO}/tags/list", answer(200, b'{"tags": []}', {
            "Link": f'<http://localhost:1/v2/{REPO}/tags/list?last=a>; rel="next"'})),
        ExitCode.REGISTRY, "links to another server"),
    "manifest announced as 300 MB": (
        lambda r: (no_digest_header(r), r.on("GET", manifest_path(TAG), answer(200, b"{}", {
            "Content-Length": str(300 << 20)}))),
        ExitCode.REGISTRY, "announced 314572800 bytes"),
}


def test_baseline_the_fake_registry_serves_a_trusted_image(cli, reg, pub):
    res = cli("trust", f"{reg.host}/{REPO}:{TAG}", "--key", pub, "--json")
    assert res.code == 0, res.output
    assert res.json()["digest"] == reg.digest


@pytest.mark.parametrize("name", list(CASES))
def test_an_odd_answer_is_a_registry_error_that_says_what(cli, reg, pub, name):
    setup, code, says = CASES[name]
    setup(reg)
    res = cli("trust", f"{reg.host}/{REPO}:{TAG}", "--key", pub, "--json")
    assert res.code == int(code), res.output
    doc = res.json()
    assert says in doc["message"], doc
    assert "Traceback" not in res.output and "internal error" not in res.output


# ------------------------------------------------------------- size and time limits


def test_a_300_mb_body_without_length_is_cut_at_the_cap():
    """Chunked, no Content-Length: the client stops reading at the cap, RSS stays flat."""
    big = b"x" * (1 << 20)

    def endless(h):
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        try:
            for _ in range(300):
                h.wfile.write(b"%x\r\n%s\r\n" % (len(big), big))
            h.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass

    with odd_registry() as r:
        r.on("GET", manifest_path(TAG), endless)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with pytest.raises(RegistryError, match=f"more than {MANIFEST_MAX} bytes"):
            RegistryClient(r.host).manifest(REPO, TAG)
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 64, grown_mb


@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_server_sending_a_byte_at_a_time_hits_the_deadline(where):
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n"
    body = b"{}" + b" " * 198
    route = drip(head, body, 0.3) if where == "headers" else drip(head + b"\r\n", body, 0.3)
    with odd_registry() as r:
        r.on("GET", manifest_path(TAG), route)
        client = RegistryClient(r.host, timeout=5, deadline=2)  # each byte comes well within the 5 s read timeout
        started = time.monotonic()
        with pytest.raises(Unreachable, match="did not finish answering") as info:
            client.manifest(REPO, TAG)
        took = time.monotonic() - started
    assert took < 4, took
    assert info.value.exit_code == ExitCode.UNREACHABLE


def test_every_call_has_a_deadline_of_at_most_a_minute():
    import inspect

    assert DEADLINE_S <= 60
    assert inspect.signature(RegistryClient).parameters["deadline"].default <= 60


# ------------------------------------------------------------ secrets stay at home


CREDS = ("alice", "s3cret")


def auth_headers(r, path: str) -> list[str | None]:
    return [s.headers.get("Authorization") for s in r.seen if s.path.startswith(path)]


def test_basic_credentials_do_not_follow_a_redirect_to_another_host(pair):
    with odd_registry() as r, odd_registry() as storage:
        data = b"blob bytes"
        digest = storage.put_blob(data)
        r.on("GET", f"/v2/{REPO}/blobs/", answer(307, headers={
            "Location": f"http://localhost:{storage.host.split(':')[1]}/v2/{REPO}/blobs/{digest}"}))
        assert RegistryClient(r.host, credentials=CREDS).blob(REPO, digest) == data
    assert auth_headers(r, f"/v2/{REPO}/blobs/") == [auth.basic(CREDS)]  # the registry itself gets them
    assert auth_headers(storage, "/v2/") == [None]


def test_basic_credentials_do_not_follow_the_realm_to_another_host():
    with odd_registry() as r, odd_registry() as tokens:
        port = tokens.host.split(":")[1]
        r.on("*", "/v2/", lambda h: (h.reply(200, b"{}") if h.headers.get("Authorization") == "Bearer T"
                                     else h.reply(401, b"", {"WWW-Authenticate":
                                                             f'Bearer realm="http://localhost:{port}/token"'})))
        tokens.on("GET", "/token", answer(200, b'{"token": "T"}'))
        RegistryClient(r.host, credentials=CREDS).tags(REPO)
    assert auth_headers(tokens, "/token") == [None]


def test_basic_credentials_go_to_a_realm_on_the_registry_itself():
    """The positive control of the test above: same host, so the token service gets them."""
    with odd_registry() as r:
        r.on("*", "/v2/", lambda h: (h.reply(200, b"{}") if h.headers.get("Authorization") == "Bearer T"
                                     else h.reply(401, b"", {"WWW-Authenticate": f'Bearer realm="http://{r.host}/token"'})))
        r.on("GET", "/token", answer(200, b'{"token": "T"}'))
        RegistryClient(r.host, credentials=CREDS).tags(REPO)
    assert auth_headers(r, "/token") == [auth.basic(CREDS)]


def test_the_bearer_token_does_not_follow_a_link_to_another_host():
    with odd_registry() as r, odd_registry() as other:
        r.on("*", "/v2/", lambda h: (h.reply(200, b'{"tags": ["a"]}', {
            "Link": f'<http://localhost:{other.host.split(":")[1]}/v2/{REPO}/tags/list?last=a>; rel="next"'})
            if h.headers.get("Authorization") == "Bearer T"
            else h.reply(401, b"", {"WWW-Authenticate": f'Bearer realm="http://{r.host}/token"'})))
        r.on("GET", "/token", answer(200, b'{"token": "T"}'))
        with pytest.raises(RegistryError, match="links to another server"):
            RegistryClient(r.host).tags(REPO)
    assert other.seen == []


def test_a_token_realm_over_plain_http_on_another_host_is_refused():
    with pytest.raises(RegistryError, match="plain HTTP"):
        auth.bearer_challenge('Bearer realm="http://auth.example.com/token"', "registry.example.com")


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1:5000", True), ("127.1.2.3", True), ("localhost:5000", True), ("[::1]:5000", True),
    ("LOCALHOST", True), ("127.evil.example", False), ("127.0.0.1.nip.io:5000", False),
    ("localhost.evil.example", False), ("10.0.0.1:5000", False), ("[::2]", False), ("", False),
])
def test_is_loopback_judges_the_parsed_host(host, loopback):
    assert auth.is_loopback(host) is loopback


@pytest.mark.parametrize("registry, realm, ok", [
    ("registry-1.docker.io", "https://auth.docker.io/token", True),
    ("registry.gitlab.com", "https://gitlab.com/jwt/auth", True),
    ("ghcr.io", "https://ghcr.io/token", True),
    ("registry.example.com", "https://evil.example/token", False),
    ("127.0.0.1:5000", "http://localhost:5001/token", False),
])
def test_which_realm_may_see_the_basic_credentials(registry, realm, ok):
    assert auth.may_send_credentials_to_realm(realm, registry) is ok


def test_the_registry_client_imports_no_docker():
    import subprocess
    import sys

    probe = "import sys, dlbase.registry.client; print('docker' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"


def test_the_fake_server_stops_by_itself():
    """The helper's own bound: the serving thread ends when the block ends."""
    before = threading.active_count()
    with odd_registry():
        pass
    time.sleep(0.3)
    assert threading.active_count() <= before


def test_bench_reads_pushed_sizes_through_the_client():
    """bench update's registry-bytes column asks the registry through the checked client."""
    from dlbase.bench import update

    body = json.dumps({"schemaVersion": 2, "config": {"mediaType": "c", "size": 7, "digest": "sha256:" + "1" * 64},
                       "layers": [{"mediaType": "l", "size": 100, "digest": "sha256:" + "2" * 64},
                                  {"mediaType": "l", "size": 20, "digest": "sha256:" + "3" * 64}]}).encode()
    with odd_registry() as r:
        r.put_manifest("notebook", body)
        assert update._manifest_bytes(r.host, REPO, "notebook") == 127
        r.on("GET", manifest_path("notebook"), answer(200, HTML))
        with pytest.raises(RegistryError, match="HTML page"):
            update._manifest_bytes(r.host, REPO, "notebook")


def test_the_deadline_holds_through_a_proxy(monkeypatch):
    """The drip server posing as an HTTP proxy: the watchdog is armed on proxied connections too."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n"
    with odd_registry() as proxy:
        proxy.on("GET", "http://", drip(head, b" " * 200, 0.3))  # a proxy sees absolute URLs
        monkeypatch.setenv("HTTP_PROXY", f"http://{proxy.host}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        client = RegistryClient("127.0.0.1:9", timeout=5, deadline=2)
        started = time.monotonic()
        with pytest.raises(Unreachable, match="did not finish answering"):
            client.manifest(REPO, TAG)
    assert time.monotonic() - started < 4
    assert proxy.seen, "the request did not go through the proxy"
