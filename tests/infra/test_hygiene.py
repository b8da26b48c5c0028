"""Nothing the build needed is left in the image: no CA bundle or credentials, no
wheelhouse or lock tools, no pip cache, no apt lists."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest

# The OS trust store and CA certificates that packages ship are part of the image;
# anything else that looks like a certificate or key is a build-time leftover.
TRUST_STORE = ("/etc/ssl/certs", "/usr/share/ca-certificates", "/usr/lib/ssl", "/usr/share/doc",
               "/opt/venv/lib", "/usr/lib/python3*", "/usr/local/lib/python3*", "/proc", "/sys", "/dev")
CA_ENV = ("REQUESTS_CA_BUNDLE", "PIP_CERT", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE", "UV_NATIVE_TLS",
          "NODE_EXTRA_CA_CERTS")
SECRET_KEY_RE = re.compile(r"(TOKEN|PASSWORD|PASSWD|SECRET|CREDENTIAL|API_KEY|ACCESS_KEY|AUTH)", re.I)
URL_CREDENTIALS_RE = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.I)
CREDENTIAL_FILES = (".netrc", ".pypirc", ".git-credentials", "credentials", "config.json", "id_rsa", "id_ed25519",
                    "id_ecdsa", ".npmrc")
WHEELHOUSE_DIRS = ("wheelhouse", "wheels")
LOCK_TOOLS = ("uv", "uvx", "pip-compile", "pip-sync", "pdm", "poetry")


def _find(host, expression: str, *, prune: tuple[str, ...] = ("/proc", "/sys", "/dev")) -> list[str]:
    """``find / -xdev`` with the given test expression, pruning some trees."""
    prunes = " -o ".join(f"-path {shlex.quote(p)}" for p in prune)
    res = host.run(f"find / -xdev \\( {prunes} \\) -prune -o \\( {expression} \\) -print 2>/dev/null")
    return sorted(line for line in res.stdout.splitlines() if line.strip())


def _packaged(host, path: str) -> bool:
    """True when an OS package owns the file (e.g. Debian's python3-pip-whl for ensurepip)."""
    return host.exists("dpkg") and host.run("dpkg -S %s", path).rc == 0


@pytest.mark.check("no CA bundle or credentials")
def test_no_ca_bundle_or_credentials(expect: dict[str, Any], host) -> None:
    problems = []
    env = expect["env"]
    set_ca = [k for k in CA_ENV if k in env]
    if set_ca:
        problems.append(f"image ENV points at a CA bundle: {', '.join(set_ca)}")
    secrets = [k for k in env if SECRET_KEY_RE.search(k)] + [k for k, v in env.items() if URL_CREDENTIALS_RE.search(v)]
    if secrets:
        problems.append(f"image ENV carries credentials: {', '.join(sorted(set(secrets)))}")
    leaked = [h[:120] for h in expect["history"] if URL_CREDENTIALS_RE.search(h)]
    if leaked:
        problems.append(f"a build step recorded credentials in the image history: {leaked[0]}")
    certs = _find(host, "-name '*.pem' -o -name '*.crt' -o -name '*.cer' -o -iname '*ca-bundle*' -o -name '*.p12'"
                        " -o -name '*.key'", prune=TRUST_STORE)
    if certs:
        problems.append(f"certificate/key files outside the OS trust store: {', '.join(certs[:5])}")
    local_ca = host.run("ls -A /usr/local/share/ca-certificates 2>/dev/null").stdout.split()
    if local_ca:
        problems.append(f"a CA was added to the trust store at build time: /usr/local/share/ca-certificates/{local_ca[0]}")
    names = " -o ".join(f"-name {shlex.quote(n)}" for n in CREDENTIAL_FILES)
    creds = [p for p in _find(host, names) if not p.startswith(("/usr/", "/opt/venv/lib/", "/etc/"))]
    creds += [p for p in _find(host, "-name pip.conf -o -name pip.ini -o -name uv.toml")
              if host.file(p).contains(r"://[^/ :@]*:[^/ @]*@")]
    if creds:
        problems.append(f"credential files: {', '.join(creds[:5])}")
    assert not problems, "; ".join(problems)


@pytest.mark.check("no wheelhouse or lock-building leftovers")
def test_no_wheelhouse_or_lock_tools(host) -> None:
    problems = []
    wheels = [w for w in _find(host, "-name '*.whl'") if not _packaged(host, w)]
    if wheels:
        problems.append(f"{len(wheels)} wheel file(s) left, e.g. {wheels[0]}")
    dirs = _find(host, " -o ".join(f"-type d -name {d}" for d in WHEELHOUSE_DIRS))
    dirs = [d for d in dirs if "/site-packages/" not in d and "/dist-packages/" not in d]
    if dirs:
        problems.append(f"wheelhouse directories left: {', '.join(dirs[:5])}")
    tools = [t for t in LOCK_TOOLS if host.exists(t)]
    if tools:
        problems.append(f"lock-building tools left: {', '.join(tools)}")
    caches = _find(host, "-type d -path '*/.cache/uv' -o -type f -name '*.lock.tmp' -o -type f -name 'requirements.in'")
    if caches:
        problems.append(f"lock-building files left: {', '.join(caches[:5])}")
    assert not problems, "; ".join(problems)


@pytest.mark.check("no pip cache or apt lists")
def test_no_pip_cache_or_apt_lists(host) -> None:
    problems = []
    pip_caches = _find(host, "-type d -path '*/.cache/pip'")
    if pip_caches:
        problems.append(f"pip cache left: {', '.join(pip_caches)}")
    lists = [p for p in _find(host, "-path '/var/lib/apt/lists/*' -type f") if not p.endswith("/lock")]
    if lists:
        problems.append(f"{len(lists)} apt list file(s) left in /var/lib/apt/lists")
    debs = _find(host, "-path '/var/cache/apt/*' \\( -name '*.deb' -o -name '*.bin' \\)")
    if debs:
        problems.append(f"apt caches left: {', '.join(debs[:3])}")
    assert not problems, "; ".join(problems)
