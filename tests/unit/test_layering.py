"""Layer groups: rules in the matrix split each lock, every package lands in exactly one group,
flavors share their groups byte for byte, the subsets are drift-checked, `dlbase check`
names what no rule takes, and `dlbase layers` sees a file a higher layer rewrites.

Expectations come from the committed locks read as text and from the issue (nvidia-* in
the lowest group, torch with triton, the flavor's own packages on top), not from the code.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path

import pytest

from dlbase.examine import imagelayers
from dlbase.define import layering
from dlbase.define import lock as lock_mod
from dlbase.build.builder import split_ref
from dlbase.build.inputs import label_buildargs
from dlbase.core.errors import ExitCode
from dlbase.define.project import Project

REPO = Path(__file__).resolve().parents[2]
RUNTIME = "torch2.6-cu124-runtime-debian12"
NOTEBOOK = "torch2.6-cu124-notebook-debian12"


def lock_names(path: Path) -> set[str]:
    """Package names of a lock, read with a regex (independent of dlbase's parser)."""
    return {lock_mod.canonical_name(m) for m in re.findall(r"^([A-Za-z0-9][\w.-]*)==", path.read_text(), re.M)}


def subset_files(variant: str) -> dict[str, str]:
    """The subsets the variant's committed Dockerfile copies in, by their name in the image."""
    text = (REPO / "images" / variant / "Dockerfile").read_text()
    copies = re.findall(r"^COPY --from=sources /sources/(images/_layers/\S+)/ /opt/dlbase/layers/$", text, re.M)
    found = {}
    for src in copies:
        (subset,) = (REPO / src).iterdir()  # one file per group folder
        found[subset.name] = subset.read_text()
    return found


@pytest.fixture(scope="module")
def project() -> Project:
    return Project.discover(root=REPO)


# --------------------------------------------------------------------------- assignment


@pytest.mark.parametrize("variant", [RUNTIME, NOTEBOOK, "torch2.6-cu124-runtime-ubuntu22.04",
                                     "torch2.6-cu124-devel-ubuntu22.04"])
def test_every_locked_package_is_in_exactly_one_committed_subset(variant):
    files = subset_files(variant)
    assert files, f"no subsets for {variant}"
    seen: list[str] = []
    for text in files.values():
        seen += [lock_mod.canonical_name(n) for n in re.findall(r"^([A-Za-z0-9][\w.-]*)==", text, re.M)]
    assert len(seen) == len(set(seen)), "a package is in two groups"
    assert set(seen) == lock_names(REPO / "images" / variant / "requirements.lock")
    assert not any("unassigned" in name for name in files)


def test_groups_follow_the_rules_of_the_issue():
    files = subset_files(RUNTIME)
    names = {f: set(re.findall(r"^([a-z0-9][\w.-]*)==", t, re.M)) for f, t in files.items()}
    assert list(files) == ["01-cuda.txt", "02-torch.txt", "03-vision.txt", "04-augmentation.txt", "05-test.txt"]
    assert names["01-cuda.txt"] and all(n.startswith("nvidia-") for n in names["01-cuda.txt"])
    assert {"torch", "triton", "sympy"} <= names["02-torch.txt"]
    assert {"torchvision", "numpy", "opencv-python-headless", "scipy", "pillow"} <= names["03-vision.txt"]
    assert {"albumentations", "albucore", "pydantic"} <= names["04-augmentation.txt"]
    assert "pytest" in names["05-test.txt"]


def test_subsets_keep_the_locks_hashes_and_install_with_require_hashes():
    lock = lock_mod.read_lock(REPO / "images" / RUNTIME / "requirements.lock")
    for name, text in subset_files(RUNTIME).items():
        sub = lock_mod.parse_lock_text(text, source=name)
        for p in sub.packages:
            assert sorted(p.hashes) == sorted(lock.get(p.name).hashes)
            assert p.version == lock.get(p.name).version


def test_flavors_share_every_group_below_their_own_byte_for_byte():
    rt, nb = subset_files(RUNTIME), subset_files(NOTEBOOK)
    assert set(rt) < set(nb) and set(nb) - set(rt) == {"06-flavor.txt"}
    for name in rt:
        assert rt[name] == nb[name], f"{name} differs: the flavors would not share that layer"
    assert "jupyterlab==" in nb["06-flavor.txt"]


def test_shared_packages_of_the_flavor_locks_are_identical():
    rt = lock_mod.read_lock(REPO / "images" / RUNTIME / "requirements.lock")
    nb = lock_mod.read_lock(REPO / "images" / NOTEBOOK / "requirements.lock")
    for p in rt.packages:
        q = nb.get(p.name)
        assert q is not None and (q.version, sorted(q.hashes)) == (p.version, sorted(p.hashes))


def test_via_graph_reads_both_annotation_forms():
    text = ("a==1 \\\n    --hash=sha256:" + "0" * 64 + "\n    # via -r requirements.in\n"
            "b==1 \\\n    --hash=sha256:" + "1" * 64 + "\n    # via\n    #   a\n    #   -c constraints.txt\n    #   c\n"
            "c==1 \\\n    --hash=sha256:" + "2" * 64 + "\n    # via a\n")
    graph = layering.dependency_graph(text)
    assert graph["a"] == {"b", "c"} and graph["c"] == {"b"}
    assert layering.closure(["c"], graph) == {"c", "b"}
    assert "-c constraints.txt" not in graph and "-r requirements.in" not in graph


def _group(index: int, name: str, *pins: str) -> layering.Group:
    return layering.Group(index=index, name=name,
                          packages=tuple(lock_mod.Pinned(p, "1", ["sha256:" + "0" * 64]) for p in pins))


def test_groups_are_compared_by_name_not_by_position():
    theirs = layering.Assignment(groups=[_group(1, "cuda", "a"), _group(3, "vision", "v"), _group(4, "flavor")])
    mine = layering.Assignment(groups=[_group(1, "cuda", "a"), _group(2, "extra", "x"), _group(3, "vision", "v"),
                                       _group(4, "flavor", "j")])
    assert layering.differing_groups(mine, theirs, {"flavor"}) == ["extra"]
    changed = layering.Assignment(groups=[_group(1, "cuda", "a"), _group(3, "vision", "w")])
    assert layering.differing_groups(changed, theirs, {"flavor"}) == ["vision"]
    assert layering.differing_groups(theirs, theirs, {"flavor"}) == []


def test_check_names_only_the_group_the_flavors_do_not_share(project_copy, edit):
    """A rule that takes only notebook packages, below vision: before, every group above it
    was reported as differing (compared by position)."""
    edit(project_copy / "images" / "matrix.yaml", "    closure: [torch]\n",
         "    closure: [torch]\n  - name: extra\n    match: [\"jupyter*\"]\n")
    project = Project.discover(root=project_copy)
    (warning,) = [f for f in layering.findings(project, project.matrix.get(NOTEBOOK)) if f.severity == "warning"]
    assert f"groups extra differ from those of {RUNTIME}" in warning.message


def test_a_package_no_rule_takes_is_reported_by_check(project_copy, edit, cli):
    matrix = project_copy / "images" / "matrix.yaml"
    edit(matrix, "    closure: [pytest]\n", "    closure: [pluggy]\n")
    res = cli("check")
    assert res.code == ExitCode.INVALID_INPUT, res.output
    assert "no layer rule takes" in res.output and "pytest==8.3.5" in res.output
    assert "Traceback" not in res.output


def test_layer_rule_errors_name_the_field(project_copy, edit, cli):
    matrix = project_copy / "images" / "matrix.yaml"
    edit(matrix, "  - name: test\n    closure: [pytest]\n", "  - name: test\n  - name: test\n    closure: [pytest]\n")
    res = cli("check")
    assert res.code == ExitCode.INVALID_INPUT
    assert "layer group 'test' has no rule" in res.output or "defined twice" in res.output


def test_extends_must_name_a_flavor(project_copy, edit, cli):
    edit(project_copy / "images" / "matrix.yaml", "    extends: runtime\n", "    extends: runtim\n")
    res = cli("check")
    assert res.code == ExitCode.INVALID_INPUT and "extends 'runtim'" in res.output


def test_runtime_and_notebook_copy_the_same_files_for_shared_groups():
    """The classic builder's COPY cache key includes the source path: shared groups must be one file."""
    def sources(v):
        return re.findall(r"^COPY (images/_layers/\S+) ", (REPO / "images" / v / "Dockerfile").read_text(), re.M)
    rt, nb = sources(RUNTIME), sources(NOTEBOOK)
    assert rt == nb[:len(rt)] and len(nb) == len(rt) + 1


def test_a_stale_subset_is_drift(project_copy, cli):
    path = sorted((project_copy / "images" / "_layers").glob("04-augmentation-*/04-augmentation.txt"))[0]  # one per line
    path.write_text(path.read_text().replace("albumentations==2.0.8", "albumentations==2.0.7"))
    res = cli("render", "--check")
    assert res.code == ExitCode.DRIFT and path.name in res.output
    assert cli("render").code == 0 and cli("render", "--check").code == 0


def test_a_subset_no_group_produces_is_drift_and_render_removes_it(project_copy, cli):
    extra = project_copy / "images" / "_layers" / "09-old-000000000000.txt"
    extra.write_text(layering.SUBSET_HEADER.format(name="old"))
    assert cli("render", "--check").code == ExitCode.DRIFT
    assert cli("render").code == 0 and not extra.exists()


def test_a_stale_subset_folder_is_removed_with_its_subset(project_copy, cli):
    """Subsets live in a folder per group (the image's COPY takes a folder); the folder a
    stale one leaves empty goes too, so the tree is what a checkout of it would be."""
    folder = project_copy / "images" / "_layers" / "09-old-000000000000"
    folder.mkdir()
    (folder / "09-old.txt").write_text(layering.SUBSET_HEADER.format(name="old"))
    kept = project_copy / "images" / "_layers" / "08-mine-000000000000"
    kept.mkdir()
    (kept / "08-mine.txt").write_text(layering.SUBSET_HEADER.format(name="mine"))
    (kept / "notes.md").write_text("someone's own file\n")
    assert cli("render", "--check").code == ExitCode.DRIFT
    assert cli("render").code == 0
    assert not folder.exists()
    assert kept.is_dir() and not (kept / "08-mine.txt").exists() and (kept / "notes.md").is_file()


# --------------------------------------------------------------------------- locks


def test_constraints_are_part_of_the_fingerprint_and_absent_ones_change_nothing():
    base = lock_mod.LockSpec(variant="v", requirements=["torch==2.6.0"])
    same = lock_mod.LockSpec(variant="v", requirements=["torch==2.6.0"], constraints=[])
    other = lock_mod.LockSpec(variant="v", requirements=["torch==2.6.0"], constraints=["numpy==2.2.6"])
    assert base.fingerprint() == same.fingerprint() != other.fingerprint()


def test_committed_flavor_locks_are_current_with_their_parent_constraints(cli):
    res = cli("lock", "--check", NOTEBOOK, "torch2.6-cu124-devel-ubuntu22.04", "--json")
    assert res.code == 0, res.output
    assert {r["status"] for r in res.json()["variants"]} == {"current"}


# --------------------------------------------------------------------------- build helpers


def test_build_labels_become_the_args_of_one_label_step():
    args = label_buildargs({"org.opencontainers.image.created": "T", "dlbase.lock-hash": "abc",
                            "org.opencontainers.image.base.name": "x"})
    assert args == {"OCI_CREATED": "T", "DLBASE_LOCK_HASH": "abc"}
    text = (REPO / "images" / RUNTIME / "Dockerfile").read_text()
    assert text.count("\nLABEL ") == 1
    for arg in ("OCI_CREATED", "DLBASE_LOCK_HASH", "OCI_BASE_DIGEST"):
        assert f"${{{arg}}}" in text


@pytest.mark.parametrize("ref,want", [
    ("127.0.0.1:5000/dlbase/pytorch:2.6", ("127.0.0.1:5000/dlbase/pytorch", "2.6")),
    ("127.0.0.1:5000/dlbase/pytorch", ("127.0.0.1:5000/dlbase/pytorch", "latest")),
    ("repo@sha256:" + "a" * 64, ("repo", "sha256:" + "a" * 64)),
    ("h:5000/repo:tag@sha256:" + "a" * 64, ("h:5000/repo", "sha256:" + "a" * 64)),  # was repo 'h:5000/repo:tag'
])
def test_cache_from_refs_split_like_docker(ref, want):
    assert split_ref(ref) == want


# --------------------------------------------------------------------------- dlbase layers


def _tar(entries: dict[str, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def saved_image(layers: list[dict[str, bytes | None]], created_by: list[str]) -> io.BytesIO:
    """A `docker save` archive (legacy layout) of the given layers."""
    entries: dict[str, bytes | None] = {}
    paths = []
    for i, layer in enumerate(layers):
        entries[f"l{i}/"] = None
        entries[f"l{i}/layer.tar"] = _tar(layer)
        paths.append(f"l{i}/layer.tar")
    config = {"rootfs": {"diff_ids": [f"sha256:{i:064d}" for i in range(len(layers))]},
              "history": [{"created_by": c} for c in created_by]}
    entries["cfg.json"] = json.dumps(config).encode()
    entries["manifest.json"] = json.dumps([{"Config": "cfg.json", "Layers": paths}]).encode()
    return io.BytesIO(_tar(entries))


def test_layers_analysis_counts_packages_and_finds_a_rewritten_lower_file():
    site = "opt/venv/lib/python3.11/site-packages"
    layers = [
        {"etc/": None, "etc/os-release": b"debian"},
        {f"{site}/nvidia/__init__.py": b"", f"{site}/nvidia/__pycache__/__init__.cpython-311.pyc": b"pyc",
         f"{site}/nvidia_cublas-1.dist-info/METADATA": b"m"},
        {f"{site}/torch/__init__.py": b"x" * 10, f"{site}/torch-2.6.0.dist-info/METADATA": b"m",
         f"{site}/nvidia/__pycache__/__init__.cpython-311.pyc": b"pyc"},
    ]
    steps = ["imported", "RUN pip install -r /opt/dlbase/layers/01-cuda.txt",
             "RUN pip install -r /opt/dlbase/layers/02-torch.txt"]
    rows = imagelayers.analyse(saved_image(layers, steps))
    assert [r.group for r in rows] == ["base", "cuda", "torch"]
    assert [r.packages for r in rows] == [0, 1, 1]
    assert rows[1].shadowed == 0
    assert rows[2].shadowed == 1
    assert rows[2].shadow_examples == [f"/{site}/nvidia/__pycache__/__init__.cpython-311.pyc"]
    assert rows[2].size_bytes == 10 + 1 + 3


def test_layers_analysis_counts_a_whiteout_of_a_lower_file_as_shadowing():
    layers = [{"a/b.txt": b"1"}, {"a/.wh.b.txt": b""}]
    rows = imagelayers.analyse(saved_image(layers, ["imported", "RUN rm a/b.txt"]))
    assert rows[1].shadowed == 1 and rows[1].shadow_examples == ["/a/b.txt"]


def oci_saved_image(layers: list[dict[str, bytes | None]], created_by: list[str]) -> io.BytesIO:
    """A `docker save` archive as the containerd image store writes it: an OCI layout whose
    config is a blob with no .json name and whose layers stay gzip-compressed."""
    import gzip
    import hashlib

    def blob(data: bytes) -> tuple[str, bytes]:
        return f"blobs/sha256/{hashlib.sha256(data).hexdigest()}", data

    entries: dict[str, bytes | None] = {"blobs/": None, "blobs/sha256/": None}
    paths = []
    for layer in layers:
        name, data = blob(gzip.compress(_tar(layer), mtime=0))
        entries[name] = data
        paths.append(name)
    config = {"rootfs": {"diff_ids": [f"sha256:{i:064d}" for i in range(len(layers))]},
              "history": [{"created_by": c} for c in created_by]}
    config_name, config_data = blob(json.dumps(config).encode())
    entries[config_name] = config_data
    entries["manifest.json"] = json.dumps([{"Config": config_name, "Layers": paths}]).encode()
    return io.BytesIO(_tar(entries))


def test_layers_analysis_reads_the_containerd_stores_oci_save_and_buildkits_history():
    site = "opt/venv/lib/python3.11/site-packages"
    layers = [{"etc/os-release": b"debian"}, {f"{site}/torch-2.6.0.dist-info/METADATA": b"m"},
              {"opt/dlbase/layers/02-torch.txt": b"torch==2.6.0"}]
    steps = ["imported",
             "RUN |2 WHEELHOUSE=http://127.0.0.1:38211/ PIP_INDEX_URL=https://pypi.org/simple /bin/bash -o pipefail "
             "-c /opt/venv/bin/python -B /opt/dlbase/install_group.py /opt/dlbase/layers/02-torch.txt # buildkit",
             "COPY /sources/images/_layers/02-torch-0123456789ab/ /opt/dlbase/layers/ # buildkit"]
    rows = imagelayers.analyse(oci_saved_image(layers, steps))
    assert [r.group for r in rows] == ["base", "torch", "(torch subset)"]
    assert rows[1].packages == 1 and rows[1].step.startswith("/opt/venv/bin/python -B")
    assert rows[2].step == "COPY /sources/images/_layers/02-torch-0123456789ab/ /opt/dlbase/layers/"
