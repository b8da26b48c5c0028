"""The notebook flavor serves JupyterLab on 8888, and only to someone with its token."""

from __future__ import annotations

import secrets
from typing import Any

import pytest


@pytest.mark.check("JupyterLab on 8888 requires its token")
def test_notebook_serves_jupyterlab_with_a_token(expect: dict[str, Any]) -> None:
    if not expect["jupyter"]:
        flavor = expect["flavor"]
        pytest.skip(f"the {flavor} flavor serves no JupyterLab" if flavor
                    else "the image names no dlbase flavor, so no JupyterLab is expected")
    from dlbase.engine import Engine
    from dlbase.verify.jupyter import probe_jupyter

    assert "8888/tcp" in expect["exposed_ports"], f"the image does not EXPOSE 8888 (exposes {expect['exposed_ports']})"
    token = secrets.token_hex(16)
    engine = Engine()
    # The image's own command (what `docker run IMAGE` serves), with a token we know.
    with engine.started(expect["image_id"], expect["cmd"] or None, environment={"JUPYTER_TOKEN": token},
                        ports={"8888/tcp": None}, labels=expect["run_labels"], ready_timeout=30) as box:
        bindings = box.ports.get("8888/tcp") or []
        assert bindings, "port 8888 was not published"
        result = probe_jupyter(f"http://127.0.0.1:{bindings[0][1]}", token, timeout=120)
        logs = engine.logs(box.id)
    tail = " | ".join(logs.strip().splitlines()[-3:])
    assert result.ok, "; ".join(result.problems) + (f" (server log: {tail})" if tail else "")
