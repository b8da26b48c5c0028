"""The probe of a Jupyter server: does it serve JupyterLab, and only with its token?

Used by the notebook flavor's host check (tests/infra/test_notebook.py) against the
image's own command; plain HTTP through requests, no daemon.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import requests

from dlbase.core import networds


@dataclass
class JupyterProbe:
    ok: bool
    problems: list[str]
    version: str | None = None
    seconds: float = 0.0


def probe_jupyter(base_url: str, token: str, *, timeout: float = 90.0, interval: float = 0.5) -> JupyterProbe:
    """Does a Jupyter server at base_url serve JupyterLab, and only to someone with the token?

    Waits until ``GET /api`` (public: the server's version) answers, then requires that
    ``/api/status`` refuses a request without the token (401/403), answers one with it,
    and that ``/lab`` serves JupyterLab with the token.
    """
    base = base_url.rstrip("/")
    started = time.monotonic()
    deadline = started + timeout
    version = None
    last = "no answer"
    with requests.Session() as http:
        while True:
            try:
                resp = http.get(f"{base}/api", timeout=5)
                if resp.status_code == 200:
                    with contextlib.suppress(ValueError):
                        version = resp.json().get("version")
                    break
                last = f"GET /api answered {resp.status_code}"
            except requests.RequestException as exc:
                last = networds.why(exc)
            if time.monotonic() > deadline:
                return JupyterProbe(False, [f"no Jupyter server answered at {base} within {timeout:.0f}s ({last})"],
                                    seconds=round(time.monotonic() - started, 2))
            time.sleep(interval)
        problems = []
        try:
            anon = http.get(f"{base}/api/status", timeout=10, allow_redirects=False)
            if anon.status_code not in (401, 403):
                problems.append(f"GET /api/status without a token answered {anon.status_code}, not 401/403: "
                                "the server does not require its token")
            authed = http.get(f"{base}/api/status", headers={"Authorization": f"token {token}"}, timeout=10)
            if authed.status_code != 200:
                problems.append(f"GET /api/status with the token answered {authed.status_code}, not 200")
            lab = http.get(f"{base}/lab", params={"token": token}, timeout=20)
            if lab.status_code != 200 or "jupyterlab" not in lab.text.lower():
                problems.append(f"GET /lab with the token answered {lab.status_code} without a JupyterLab page")
        except requests.RequestException as exc:
            problems.append(f"request to {base} failed: {exc}")
    return JupyterProbe(not problems, problems, version=version, seconds=round(time.monotonic() - started, 2))
