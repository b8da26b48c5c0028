"""What `rebuild-check` reports (and the "rebuilt identical" attestation reads): the keys
of RebuildResult.to_dict() for both builders, and when a result counts as reproducible."""

from __future__ import annotations

from dlbase.build import reproduce
from dlbase.examine import diff as diff_mod
from dlbase.examine import layerdiff
from dlbase.image import snapshot

A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
CONTRACT = {"variant", "reproducible", "digests", "image_ids", "builder", "source_date_epoch", "revision"}


def _buildkit(a: str, b: str, layers: layerdiff.ImageDiff | None = None) -> reproduce.RebuildResult:
    return reproduce.RebuildResult(variant="v", builder="buildkit", image_ids=(a, b), digests=(a, b),
                                   build_seconds=(1.0, 2.0), seconds=3.0, source_date_epoch=1796185485,
                                   revision="f2ce4b8", layers=layers)


def test_equal_digests_are_reproducible_with_nothing_excluded():
    body = _buildkit(A, A).to_dict()
    assert CONTRACT <= set(body)
    assert body["reproducible"] is True and body["digests"] == [A, A] and body["excluded_paths"] == {}
    assert body["compared"] == "manifest digest" and body["source_date_epoch"] == 1796185485
    assert "layers" not in body


def test_different_digests_carry_the_layers_that_differ():
    found = layerdiff.ImageDiff(digests=(A, B), config=[], layer_counts=(3, 3), layers=[
        layerdiff.LayerDiff(index=2, step="RUN apt-get install", digests=(A, B),
                            files=[layerdiff.FileDiff("etc/x", ["content"], "file a", "file b")])])
    body = _buildkit(A, B, found).to_dict()
    assert body["reproducible"] is False
    assert body["layers"][0]["index"] == 2 and body["layers"][0]["files"][0]["reasons"] == ["content"]


def test_classic_compares_files_and_lists_the_excluded_paths():
    same = diff_mod.ImageDiff(a=A, b=B, a_id=A, b_id=B, groups={"files": snapshot.Changes()},
                              files_compared=(10, 10))
    result = reproduce.RebuildResult(variant="v", builder="classic", image_ids=(A, B), digests=(A, B),
                                     build_seconds=(1.0, 1.0), seconds=2.0, source_date_epoch=None,
                                     revision="r", diff=same)
    body = result.to_dict()
    assert CONTRACT <= set(body)
    assert body["reproducible"] is True and body["compared"] == "files"
    assert "etc/hostname" in body["excluded_paths"] and body["files_compared"] == [10, 10]
