"""push --compression zstd, the pure parts: re-compressing one layer (real gzip and zstd
bytes, real tars) and the OCI manifest that names the re-compressed layers."""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
import tarfile

import pytest
import zstandard

from dlbase.publish import compression
from dlbase.publish.compression import CompressionError, Layer
from dlbase.publish.push import names_image
from dlbase.registry import mediatypes


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def a_tar(payload: bytes = b"hello zstd\n" * 5000) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("opt/file.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def recompressed(stored: bytes) -> tuple[Layer, bytes]:
    out = io.BytesIO()
    seen: list[int] = []
    layer = compression.recompress(io.BytesIO(stored), out, path="mem", on_bytes=seen.append)
    assert seen and seen[-1] <= len(stored)
    return layer, out.getvalue()


@pytest.mark.parametrize("encode,encoding", [
    (lambda raw: gzip.compress(raw, mtime=0), "gzip"),
    (lambda raw: zstandard.ZstdCompressor(level=1).compress(raw), "zstd"),
    (lambda raw: raw, "none"),
])
def test_recompress_keeps_the_tar_and_reports_every_digest(encode, encoding):
    raw = a_tar()
    stored = encode(raw)
    layer, out = recompressed(stored)
    assert layer.encoding == encoding
    assert layer.source_digest == sha(stored)
    assert layer.diff_id == sha(raw)  # the config's diff_id: digest of the uncompressed tar
    assert layer.digest == sha(out) and layer.size == len(out)
    assert out[:4] == b"\x28\xb5\x2f\xfd"  # a zstd frame
    assert zstandard.ZstdDecompressor().stream_reader(io.BytesIO(out)).read() == raw


def test_recompress_is_reproducible():
    stored = gzip.compress(a_tar(bytes(range(256)) * 4000), mtime=0)
    assert recompressed(stored)[0].digest == recompressed(stored)[0].digest


def test_corrupt_gzip_layer_is_a_compression_error():
    stored = bytearray(gzip.compress(a_tar(), mtime=0))
    stored[len(stored) // 2] ^= 0xFF
    with pytest.raises(CompressionError) as err:
        recompressed(bytes(stored))
    assert "cannot be decoded as gzip" in err.value.message
    assert err.value.exit_code != 0


def _source() -> tuple[dict, dict, list[Layer]]:
    raws = [a_tar(b"one" * 3000), a_tar(b"two" * 3000)]
    stored = [gzip.compress(r, mtime=0) for r in raws]
    layers = [recompressed(s)[0] for s in stored]
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha(r) for r in raws]}}
    cbytes = json.dumps(config).encode()
    source = {
        "schemaVersion": 2, "mediaType": mediatypes.DOCKER_MANIFEST,
        "config": {"mediaType": mediatypes.DOCKER_CONFIG, "digest": sha(cbytes), "size": len(cbytes)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": sha(s),
                    "size": len(s), **({"annotations": {"org.example.note": "kept"}} if i == 1 else {})}
                   for i, s in enumerate(stored)],
        "annotations": {"org.opencontainers.image.created": "2026-12-01T00:00:00Z"},
    }
    return source, config, layers


def test_zstd_manifest_types_sizes_digests_and_annotations():
    source, config, layers = _source()
    before = copy.deepcopy(source)
    compression.check_layers(source, config, layers)
    out = compression.converted_manifest(source, layers, source_digest="sha256:" + "a" * 64)
    assert source == before  # pure
    assert out["mediaType"] == mediatypes.OCI_MANIFEST and out["schemaVersion"] == 2
    # the config blob is the same bytes (digest and size), typed as OCI's
    assert out["config"] == {**source["config"], "mediaType": mediatypes.OCI_CONFIG}
    assert [d["mediaType"] for d in out["layers"]] == [compression.ZSTD_LAYER] * 2
    assert [(d["digest"], d["size"]) for d in out["layers"]] == [(lay.digest, lay.size) for lay in layers]
    assert "annotations" not in out["layers"][0]
    assert out["layers"][1]["annotations"] == {"org.example.note": "kept"}
    assert out["annotations"] == {"org.opencontainers.image.created": "2026-12-01T00:00:00Z",
                                  compression.SOURCE_ANNOTATION: "sha256:" + "a" * 64}
    assert compression.manifest_compression(out) == "zstd"
    assert compression.manifest_compression(source) == "gzip"
    body = compression.manifest_bytes(out)
    assert json.loads(body) == out and b" " not in body


def test_zstd_manifest_keeps_an_oci_config_type_and_subject():
    source, _config, layers = _source()
    source["config"]["mediaType"] = "application/vnd.example.config+json"
    source["subject"] = {"mediaType": mediatypes.OCI_MANIFEST, "digest": "sha256:" + "b" * 64, "size": 1}
    out = compression.converted_manifest(source, layers, source_digest="sha256:" + "a" * 64)
    assert out["config"]["mediaType"] == "application/vnd.example.config+json"
    assert out["subject"] == source["subject"]


def test_layers_that_disagree_with_the_manifest_or_config_are_refused():
    source, config, layers = _source()
    with pytest.raises(CompressionError, match="decodes to"):
        compression.check_layers(source, {"rootfs": {"diff_ids": ["sha256:" + "0" * 64] * 2}}, layers)
    with pytest.raises(CompressionError, match="names"):
        compression.check_layers(source, config, list(reversed(layers)))
    wrong = copy.deepcopy(source)
    wrong["layers"][0]["mediaType"] = compression.ZSTD_LAYER
    with pytest.raises(CompressionError, match="says zstd"):
        compression.check_layers(wrong, config, layers)
    with pytest.raises(CompressionError, match="2 layers, 1"):
        compression.converted_manifest(source, layers[:1], source_digest="sha256:" + "a" * 64)


def test_names_image_on_either_store_and_for_the_zstd_form():
    image_id = "sha256:" + "c" * 64
    other = "sha256:" + "d" * 64
    gz = {"config": {"mediaType": mediatypes.OCI_CONFIG, "digest": other, "size": 2}}
    assert names_image(gz, image_id, image_id, "w")  # containerd store: the ID is the manifest digest
    classic = {"config": {"mediaType": mediatypes.OCI_CONFIG, "digest": image_id, "size": 2}}
    assert names_image(classic, other, image_id, "w")  # classic store: the ID is the config digest
    zs = {**gz, "annotations": {compression.SOURCE_ANNOTATION: image_id}}
    assert names_image(zs, other, image_id, "w")
    assert not names_image(gz, other, image_id, "w")


# ------------------------------------------------------------------ converting to gzip
def _to_gzip(stored: bytes, workers: int) -> tuple[Layer, bytes]:
    from concurrent.futures import ThreadPoolExecutor

    out = io.BytesIO()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        layer = compression.recompress(io.BytesIO(stored), out, path="mem", target="gzip", pool=pool)
    return layer, out.getvalue()


@pytest.mark.parametrize("size", [0, 1, 65536, 3 * 65536 + 17])
def test_parallel_gzip_is_one_member_gzip_reads_and_the_same_bytes_for_any_pool(size, monkeypatch):
    raw = (bytes(range(256)) * (size // 256 + 1))[:size] if size else b""
    stored = zstandard.ZstdCompressor(level=1).compress(raw)
    monkeypatch.setattr(compression, "GZIP_PIECE", 65536)  # several pieces from a small layer
    one, out1 = _to_gzip(stored, 1)
    four, out4 = _to_gzip(stored, 4)
    assert out1 == out4 and one.digest == four.digest == sha(out1)  # pieces, not the pool, decide the bytes
    assert out1[:2] == b"\x1f\x8b" and gzip.decompress(out1) == raw  # the stdlib reads it: one valid member
    assert one.encoding == "zstd" and one.target == "gzip" and one.diff_id == sha(raw)
    with gzip.GzipFile(fileobj=io.BytesIO(out1)) as member:  # crc32 and size in the trailer are checked
        assert member.read() == raw


def test_converted_manifest_names_gzip_layers_for_a_gzip_target():
    raw = a_tar()
    stored = zstandard.ZstdCompressor(level=3).compress(raw)
    layer, _out = _to_gzip(stored, 2)
    source = {"schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST,
              "config": {"mediaType": mediatypes.OCI_CONFIG, "digest": "sha256:" + "c" * 64, "size": 10},
              "layers": [{"mediaType": compression.ZSTD_LAYER, "digest": sha(stored), "size": len(stored)}]}
    out = compression.converted_manifest(source, [layer], source_digest="sha256:" + "a" * 64)
    assert out["layers"] == [{"mediaType": compression.GZIP_LAYER, "digest": layer.digest, "size": layer.size}]
    assert compression.manifest_compression(out) == "gzip" and compression.manifest_compression(source) == "zstd"
