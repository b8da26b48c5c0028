"""`dlbase bench compression`'s report and its early refusals (the pushes and cold pulls
themselves run against a real image: see the command in the README)."""

from __future__ import annotations

import json

from dlbase.bench import compression as bc
from dlbase.core.errors import ExitCode

NO_DAEMON = "tcp://127.0.0.1:1"  # a command that reached the daemon would exit 6


def _bench() -> bc.CompressionBench:
    bench = bc.CompressionBench(image="img", image_id="sha256:" + "a" * 64, variant="v", image_bytes=6_000_000_000,
                                layers=21, zstd_level=3, rounds=2, measured_at="2026-12-02T05:00:00+00:00")
    bench.sides["gzip"] = bc.Side("gzip", "r@g", "sha256:" + "1" * 64, 4_000_000_000, 4_000_000_100, 60.0,
                                  ["application/vnd.oci.image.layer.v1.tar+gzip"], [40.0, 50.0])
    bench.sides["zstd"] = bc.Side("zstd", "r@z", "sha256:" + "2" * 64, 3_000_000_000, 3_000_000_100, 240.0,
                                  ["application/vnd.oci.image.layer.v1.tar+zstd"], [20.0, 30.0])
    return bench


def test_ratios_and_report(tmp_path):
    bench = _bench()
    doc = bench.to_dict()
    assert doc["zstd_over_gzip"] == {"registry_bytes": 0.75, "pull_seconds": 0.556, "push_seconds": 4.0}
    assert doc["sides"]["gzip"]["pull_median_seconds"] == 45.0
    jpath, mpath, table = bc.write(bench, tmp_path)
    assert json.loads(jpath.read_text()) == doc
    assert "| registry bytes (config + layers) | 4.000 GB | 3.000 GB | 0.75 |" in table
    assert "| cold pull + unpack: median | 45.0 s | 25.0 s | 0.556 |" in table
    assert table in mpath.read_text()


def test_missing_tools_are_said_before_the_daemon(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", NO_DAEMON)
    monkeypatch.setenv("PATH", str(tmp_path))  # neither docker-registry nor containerd on it
    res = cli("bench", "compression", "--json")
    assert res.code == ExitCode.MISSING, res.output
    assert "docker-registry" in json.loads(res.out)["message"]
