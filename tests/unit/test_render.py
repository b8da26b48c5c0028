"""Rendering: golden Dockerfiles, drift detection (`render --check`), orphans, strict
templates, the README table, and properties of every rendered Dockerfile read by parsing
its instructions (expectations come from the raw YAML and the issue, not from the code).

Regenerate the golden files after an intended template change with
    .venv/bin/python -m pytest tests/unit/test_render.py --update-golden
(or DLBASE_UPDATE_GOLDEN=1) and review their diff.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from dlbase.define import bakefile
from dlbase.define import render as render_mod
from dlbase.core.errors import ExitCode
from dlbase.define.project import Project
from dlbase.define.spec import FILE_EPOCH

SOURCES_ROOT = render_mod.SOURCES_ROOT

REPO = Path(__file__).resolve().parents[2]
GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
MATRIX_REL = "images/matrix.yaml"

DEFAULT = "torch2.6-cu124-runtime-debian12"
DEVEL_UBUNTU = "torch2.6-cu124-devel-ubuntu22.04"
NOTEBOOK = "torch2.6-cu126-notebook-ubuntu22.04"
REMOVABLE = NOTEBOOK  # a non-default variant whose removal leaves a valid matrix
GOLDEN = [DEFAULT, DEVEL_UBUNTU, NOTEBOOK]
COMPILERS = {"build-essential", "gcc", "g++", "clang", "cpp", "make", "cuda-nvcc-12-4", "python3-dev"}


# --------------------------------------------------------------------------- helpers
def instructions(text: str) -> list[tuple[str, str]]:
    """The image's instructions: its last stage's, from its FROM on. A COPY from stage "sources"
    (which holds the context's folders under /sources, dated by one RUN) reads as the COPY of
    the context folder it takes, ``SRC/ DEST``; the stage itself has its own tests."""
    image = stages(text)[-1]
    return [(w, from_sources(a) if w == "COPY" else a) for w, a in image]


def from_sources(args: str) -> str:
    """``--from=sources /sources/SRC/ DEST`` as ``SRC/ DEST``; anything else unchanged."""
    if not args.startswith("--from="):
        return args
    flag, src, dest = args.split()
    assert flag == "--from=sources" and src.startswith(SOURCES_ROOT + "/"), args
    return f"{src.removeprefix(SOURCES_ROOT + '/')} {dest}"


def stages(text: str) -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of (INSTRUCTION, arguments) from its FROM on
    (ARGs before the first FROM go with the first stage)."""
    found: list[list[tuple[str, str]]] = [[]]
    for word, args in all_instructions(text):
        if word == "FROM" and any(w == "FROM" for w, _ in found[-1]):
            found.append([])
        found[-1].append((word, args))
    return found


def all_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out, buf = [], ""
    for raw in text.splitlines():
        s = raw.strip()
        if s.startswith("#") or (not buf and not s):
            continue
        if s.endswith("\\"):
            buf += s[:-1].rstrip() + " "
            continue
        buf += s
        if buf.strip():
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
        buf = ""
    assert not buf, "dangling line continuation at the end of the Dockerfile"
    return out


def kv(args: str) -> dict[str, str]:
    pairs = {}
    for tok in shlex.split(args):
        key, sep, value = tok.partition("=")
        assert sep, f"not KEY=VALUE: {tok!r}"
        pairs[key] = value
    return pairs


def env_of(instrs) -> dict[str, str]:
    env = {}
    for word, args in instrs:
        if word == "ENV":
            env.update(kv(args))
    return env


def labels_of(instrs) -> dict[str, str]:
    labels = {}
    for word, args in instrs:
        if word == "LABEL":
            labels.update(kv(args))
    return labels


def index_of(instrs, pred) -> int:
    hits = [i for i, ins in enumerate(instrs) if pred(ins)]
    assert len(hits) == 1, f"expected exactly one matching instruction, got {len(hits)}"
    return hits[0]


def apt_run(instrs) -> str:
    (run,) = [a for w, a in instrs if w == "RUN" and "apt-get install" in a]
    return run


def apt_installed(run: str) -> set[str]:
    words = run.split("apt-get install", 1)[1].split("&&", 1)[0].split()
    return {w for w in words if not w.startswith("-")}


INSTALL_SCRIPT = "/opt/dlbase/install_group.py"


def is_install_run(word: str, args: str) -> bool:
    return word == "RUN" and INSTALL_SCRIPT in args


def landed(args: str) -> set[str]:
    """The in-image paths a ``COPY SRC DEST`` of this repository puts in the image (a folder's
    files, read from the committed folder; the .dockerignore'd Dockerfile counts too)."""
    src, dest = args.split()
    folder = REPO / src
    if folder.is_dir():
        return {f"{dest.rstrip('/')}/{p.relative_to(folder).as_posix()}" for p in folder.rglob("*") if p.is_file()}
    return {dest}


def install_target(run: str) -> str:
    """The file an install RUN installs: the last word of its first command (the mtime
    clamp that ends every RUN comes after it)."""
    return run.split(" && ")[0].split()[-1]


def install_runs(instrs) -> list[str]:
    """The install RUNs: one per layer group of the lock (one for a variant not locked yet)."""
    runs = [a for w, a in instrs if is_install_run(w, a)]
    assert runs, "no install step"
    return runs


def snapshot(root: Path) -> dict[str, str]:
    files = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            files[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return files


@pytest.fixture(scope="module")
def repo_project() -> Project:
    return Project.discover(root=REPO)


@pytest.fixture(scope="module")
def rendered(repo_project) -> dict[str, str]:
    """variant -> Dockerfile text, rendered now from templates/ and the matrix."""
    outs = render_mod.outputs(repo_project)
    return {o.path.parent.name: o.content for o in outs if o.path.name == "Dockerfile"}


@pytest.fixture(scope="module")
def variants(raw_matrix) -> dict[str, dict]:
    return {v["name"]: v for v in raw_matrix["variants"]}


# ------------------------------------------------------------------------------ golden
@pytest.mark.parametrize("name", GOLDEN)
def test_golden_dockerfile(rendered, update_golden, name):
    golden = GOLDEN_DIR / f"{name}.Dockerfile"
    if update_golden:
        GOLDEN_DIR.mkdir(exist_ok=True)
        golden.write_text(rendered[name], encoding="utf-8")
    assert golden.is_file(), f"{golden} missing: run pytest with --update-golden"
    assert rendered[name] == golden.read_text(encoding="utf-8"), (
        f"rendered {name} differs from {golden.name}; if intended, regenerate with --update-golden")


def test_golden_set_covers_default_devel_ubuntu_and_notebook(variants, raw_matrix):
    assert GOLDEN[0] == raw_matrix["default"]
    assert variants[DEVEL_UBUNTU]["flavor"] == "devel" and "ubuntu" in raw_matrix["bases"][variants[DEVEL_UBUNTU]["base"]]["os"]
    assert variants[NOTEBOOK]["flavor"] == "notebook"


# ------------------------------------------------------------------------------ drift
def test_render_check_passes_on_the_committed_tree(cli):
    res = cli("render", "--check")
    assert res.code == 0, res.output


def test_render_on_a_fresh_copy_changes_nothing(cli, project_copy):
    before = snapshot(project_copy)
    res = cli("render")
    assert res.code == 0, res.output
    assert snapshot(project_copy) == before
    assert "0 file(s) changed" in res.err


def test_edited_dockerfile_is_drift_with_a_diff(cli, project_copy, edit):
    df = project_copy / "images" / DEFAULT / "Dockerfile"
    edit(df, "USER 1000:1000", "USER root")
    res = cli("render", "--check")
    assert res.code == ExitCode.DRIFT == 3, res.output
    assert f"images/{DEFAULT}/Dockerfile" in res.err
    assert "-USER root" in res.err and "+USER 1000:1000" in res.err
    assert "dlbase render" in res.err
    # `render --check` changes nothing; `render` restores the file
    assert "USER root" in df.read_text()
    assert cli("render").code == 0
    assert df.read_text() == (REPO / "images" / DEFAULT / "Dockerfile").read_text()
    assert cli("render", "--check").code == 0


def test_deleted_dockerfile_is_drift(cli, project_copy):
    (project_copy / "images" / DEVEL_UBUNTU / "Dockerfile").unlink()
    res = cli("render", "--check")
    assert res.code == 3
    assert f"images/{DEVEL_UBUNTU}/Dockerfile: missing" in res.err


def test_edited_image_json_is_drift(cli, project_copy, edit):
    edit(project_copy / "images" / DEFAULT / "image.json", '"torchvision": "0.21.0"', '"torchvision": "0.17.0"')
    res = cli("render", "--check")
    assert res.code == 3 and f"images/{DEFAULT}/image.json" in res.err


def test_template_change_reaches_every_variant(cli, project_copy, edit, variants):
    edit(project_copy / "templates" / "Dockerfile.j2", "WORKDIR {{ workspace }}", "WORKDIR {{ workspace }}\n# new line")
    res = cli("render", "--check")
    assert res.code == 3
    for name in variants:
        assert f"images/{name}/Dockerfile" in res.err


def test_removed_variant_leaves_an_orphan_that_check_reports_and_render_removes(cli, project_copy, edit):
    m = project_copy / MATRIX_REL
    text = m.read_text()
    start = text.index(f"  - name: {REMOVABLE}\n")
    end = text.find("\n  - name:", start + 1)
    m.write_text(text[:start] + (text[end + 1:] if end != -1 else ""))
    folder = project_copy / "images" / REMOVABLE
    assert (folder / "Dockerfile").is_file()
    res = cli("render", "--check")
    assert res.code == 3, res.output
    assert f"images/{REMOVABLE}" in res.err and "no longer in the matrix" in res.err
    assert (folder / "Dockerfile").is_file()  # --check changes nothing
    res = cli("render")
    assert res.code == 0, res.output
    assert not (folder / "Dockerfile").exists() and not (folder / "image.json").exists()
    assert REMOVABLE not in (project_copy / "README.md").read_text()
    assert cli("render", "--check").code == 0


def test_hand_written_dockerfile_is_not_an_orphan(cli, project_copy):
    mine = project_copy / "images" / "my-experiment"
    mine.mkdir()
    (mine / "Dockerfile").write_text("FROM debian:12\n")
    assert cli("render", "--check").code == 0
    assert cli("render").code == 0
    assert (mine / "Dockerfile").read_text() == "FROM debian:12\n"


@pytest.mark.parametrize("template,where", [
    ("Dockerfile.j2", "templates/Dockerfile.j2"),
    ("partials/apt.j2", "templates/partials/apt.j2"),
])
def test_undefined_template_variable_fails_and_writes_nothing(cli, project_copy, edit, template, where):
    # a real change elsewhere, so a partial write would show
    edit(project_copy / "images" / DEFAULT / "Dockerfile", "USER 1000:1000", "USER root")
    path = project_copy / "templates" / template
    path.write_text(path.read_text() + "{{ no_such_variable }}\n")
    before = snapshot(project_copy)
    res = cli("render")
    assert res.code == 2, res.output
    assert where in res.err and "no_such_variable" in res.err
    assert snapshot(project_copy) == before
    assert cli("render", "--check").code == 2


def test_readme_table_drift_is_detected(cli, project_copy, edit):
    readme = project_copy / "README.md"
    edit(readme, f"| `{DEFAULT}` |", f"| `{DEFAULT}-old` |")
    res = cli("render", "--check")
    assert res.code == 3 and "README.md" in res.err and f"{DEFAULT}-old" in res.err
    assert cli("render").code == 0
    assert readme.read_text() == (REPO / "README.md").read_text()


def test_readme_text_outside_the_markers_is_kept(cli, project_copy):
    readme = project_copy / "README.md"
    readme.write_text(readme.read_text() + "\nHand-written footer.\n")
    assert cli("render", "--check").code == 0
    assert cli("render").code == 0 and readme.read_text().endswith("Hand-written footer.\n")


def test_readme_without_markers_is_an_error(cli, project_copy):
    (project_copy / "README.md").write_text("# dlbase\n")
    res = cli("render")
    assert res.code == 2 and "marker" in res.err


def test_readme_table_has_one_row_per_variant(variants, raw_matrix):
    text = (REPO / "README.md").read_text()
    start, end = text.index(render_mod.README_START), text.index(render_mod.README_END)
    rows = [ln for ln in text[start:end].splitlines() if ln.startswith("| `")]
    assert [r.split("`")[1] for r in rows] == list(variants)
    default_rows = [r for r in rows if r.rstrip().endswith("| yes |")]
    assert len(default_rows) == 1 and raw_matrix["default"] in default_rows[0]


# --------------------------------------------------------------- committed file headers
def test_every_dockerfile_has_the_generated_header(variants):
    for name in variants:
        lines = (REPO / "images" / name / "Dockerfile").read_text().splitlines()
        assert lines[0].startswith("# GENERATED by `dlbase render`"), name
        assert "templates/Dockerfile.j2" in lines[0] and "DO NOT EDIT" in lines[0], name
        assert any(ln.startswith("# Regenerate with: dlbase render") for ln in lines[:5]), name
        info = json.loads((REPO / "images" / name / "image.json").read_text())
        assert "dlbase render" in info["_generated"] and info["variant"] == name


def test_bake_file_is_generated_and_lists_every_variant(variants):
    bake = (REPO / "ci" / "docker-bake.hcl").read_text()
    assert bake.startswith("# GENERATED by `dlbase render`") and "DO NOT EDIT" in bake.splitlines()[0]
    for name in variants:
        assert f'target "{bakefile.target_name(name)}"' in bake and f'dockerfile = "images/{name}/Dockerfile"' in bake


# ------------------------------------------------------- properties of each Dockerfile
def all_variants():
    from ruamel.yaml import YAML
    return [v["name"] for v in YAML(typ="safe").load((REPO / MATRIX_REL).read_text())["variants"]]


def flavor_pairs() -> list[tuple[str, str]]:
    """(variant, the variant of its parent flavor on the same base, torch, line and Python)."""
    from ruamel.yaml import YAML
    raw = YAML(typ="safe").load((REPO / MATRIX_REL).read_text())
    pairs = []
    for v in raw["variants"]:
        parent = raw["flavors"][v["flavor"]].get("extends")
        key = (v["base"], v["torch"], v["line"], v["python"])
        pairs += [(v["name"], o["name"]) for o in raw["variants"]
                  if parent and o["flavor"] == parent and (o["base"], o["torch"], o["line"], o["python"]) == key]
    return pairs


@pytest.mark.parametrize("name, twin", flavor_pairs())
def test_a_flavor_repeats_its_parents_steps_up_to_its_own_packages(rendered, name, twin):
    """Flavors share every layer below their own on the builder only if every step up to
    there is the same (one differing ENV would rebuild all of them)."""
    mine = [(w, a.replace(name, "VARIANT")) for w, a in instructions(rendered[name])]
    theirs = [(w, a.replace(twin, "VARIANT")) for w, a in instructions(rendered[twin])]
    own = next((i for i, (w, a) in enumerate(mine) if w == "COPY" and "-flavor-" in a), None)
    if own is None:
        pytest.skip(f"{name} is not locked here (one install step for the whole lock, no groups yet)")
    assert mine[:own] == theirs[:own], f"{name} and {twin} differ before the flavor's packages"
    assert theirs[own][0] == "RUN" and "pip check" in theirs[own][1]  # the parent has no flavor group


def test_the_matrix_has_flavor_pairs_to_check():
    assert ("torch2.6-cu124-notebook-debian12", "torch2.6-cu124-runtime-debian12") in flavor_pairs()


@pytest.mark.parametrize("name", all_variants())
class TestDockerfileProperties:
    def test_from_is_the_matrix_base(self, rendered, variants, raw_matrix, name):
        ins = instructions(rendered[name])
        base = raw_matrix["bases"][variants[name]["base"]]
        froms = [a for w, a in ins if w == "FROM"]
        want = f"{base['image']}:{base['tag']}" + (f"@{base['digest']}" if base.get("digest") else "")
        assert froms == [want]
        assert ins[0][0] in ("FROM", "ARG")

    def test_the_sources_stage_dates_every_folder_the_image_takes(self, rendered, name):
        """Stage "sources" copies each context folder the image takes, once, to
        /sources/<folder>/, then dates all of it FILE_EPOCH: the image's COPYs then bring fixed
        times whatever the transfer of the context did to a folder's mtime."""
        sources, image = stages(rendered[name])
        assert sources[0] == ("FROM", f"{image[0][1]} AS sources")  # the image's own base
        copies = [a.split() for w, a in sources if w == "COPY"]
        assert copies and all(dest == f"{SOURCES_ROOT}/{src}" and src.endswith("/") for src, dest in copies)
        assert len({src for src, _ in copies}) == len(copies)
        assert [w for w, _ in sources] == ["FROM", *["COPY"] * len(copies), "RUN"]
        assert sources[-1][1] == f"find {SOURCES_ROOT} -exec touch --no-dereference --date=@{FILE_EPOCH} {{}} +"
        taken = {a.split()[0] for w, a in instructions(rendered[name]) if w == "COPY"}
        assert taken == {src for src, _ in copies}  # each folder the image takes, and no other

    def test_a_failing_command_fails_its_step_despite_the_clamp(self, rendered, name):
        """The clamp is one group after `&&`: every RUN's own commands keep their exit status
        (measured: with a bare `;` in the chain a failed install went on to `pip check`)."""
        (_sources, image) = stages(rendered[name])
        for run in [a for w, a in image if w == "RUN"]:
            own, sep, clamp = run.partition(" && { dlbase_skip=()")
            assert sep and clamp.endswith("; }"), run
            # bash parses the whole RUN; with the step's own commands replaced by a failing
            # one, the group is skipped (nothing is touched on this host) and the status kept
            probe = subprocess.run(["bash", "-o", "pipefail", "-c", f"(exit 7){sep}{clamp}"],
                                   capture_output=True, text=True, timeout=30)
            assert probe.returncode == 7, (run, probe.stderr)

    def test_every_step_writes_the_same_bytes_in_every_build(self, rendered, name):
        """What makes two builds' layers equal with no timestamp rewrite by BuildKit: every RUN
        ends by dating what it wrote FILE_EPOCH, and every COPY copies a folder into a folder
        an earlier RUN made, so no parent gets an entry (and a build-time mtime)."""
        sources, image = stages(rendered[name])
        runs = [a for w, a in image if w == "RUN"]
        assert runs and all(a.endswith(f"| xargs -0r touch --no-dereference --date=@{FILE_EPOCH}; }}") for a in runs)
        # every COPY takes its folder from stage "sources", never from the context
        assert all(a.startswith("--from=sources ") for w, a in image if w in ("COPY", "ADD"))
        made: set[str] = set()
        for word, args in instructions(rendered[name]):
            if word == "RUN":
                for cmd in args.split(" && "):
                    if cmd.startswith("mkdir -p "):
                        for path in cmd.split()[2:]:
                            made |= {str(p) for p in PurePosixPath(path).parents if str(p) != "/"} | {path}
            elif word == "COPY":
                src, dest = args.split()
                assert src.endswith("/") and dest.endswith("/"), args
                assert dest.rstrip("/") in made, f"COPY into {dest}, which no earlier RUN made"

    def test_apt_layer_is_lean(self, rendered, name):
        run = apt_run(instructions(rendered[name]))
        assert "apt-get update" in run and "-y" in run.split()
        assert "--no-install-recommends" in run
        assert "rm -rf /var/lib/apt/lists/*" in run
        assert run.index("apt-get update") < run.index("apt-get install") < run.index("rm -rf /var/lib/apt/lists/*")

    def test_install_runs_read_the_subset_copied_just_before(self, rendered, raw_matrix, name):
        # The flags (hashes, wheels only, no deps, no cache) are the script's: test_install_group.py.
        ins = instructions(rendered[name])
        tool = (raw_matrix.get("installer") or {}).get("tool", "pip")
        script = [i for i, (w, a) in enumerate(ins) if w == "COPY" and INSTALL_SCRIPT in landed(a)]
        assert len(script) == 1
        for run in install_runs(ins):
            assert run.startswith(f"/opt/venv/bin/python -B {INSTALL_SCRIPT} --installer {tool} ")
            assert f"/images/{name}/" not in run  # installs the copy inside the image
            if tool == "uv":  # the pinned uv it fetches was copied in before the first install
                lock = run.split("--installer-lock ")[1].split()[0]
                assert [w for w, a in ins[:script[0] + 2] if w == "COPY" and lock in landed(a)]
        # each install RUN reads the file the COPY just before it put in the image
        for i, (w, a) in enumerate(ins):
            if is_install_run(w, a):
                word, args = ins[i - 1]
                assert word == "COPY" and args.startswith((f"images/{name}/", "images/_layers/"))
                if args.startswith("images/_layers/"):
                    assert landed(args) == {install_target(a)}  # that file, and nothing else
                else:  # the whole lock, in the variant's folder (not locked yet: the build stops there)
                    assert install_target(a) == "/opt/dlbase/requirements.lock"
        copies = [a for w, a in ins if w == "COPY" and a.startswith(f"images/{name}/ ")]
        assert copies == [f"images/{name}/ /opt/dlbase/"] * len(copies) and copies

    def test_python_and_index_match_the_variant(self, rendered, variants, raw_matrix, raw_compat, name):
        v = variants[name]
        base_py = raw_matrix["bases"][v["base"]]["python"]
        ins = instructions(rendered[name])
        (venv,) = [a for w, a in ins if w == "RUN" and " -m venv " in a]
        assert venv.startswith(f"python{base_py} -m venv ")
        assert f"python{base_py}" in apt_installed(apt_run(ins))
        args = {}
        for w, a in ins:
            if w == "ARG" and "=" in a:
                args.update(kv(a))
        rel = raw_compat["torch"][v["torch"]]
        if v["line"] == rel["pypi_default"]:
            assert args["PIP_INDEX_URL"] == raw_compat["indexes"]["pypi"] and args["PIP_EXTRA_INDEX_URL"] == ""
        else:
            assert args["PIP_INDEX_URL"] == raw_compat["indexes"][v["line"]]
            assert args["PIP_EXTRA_INDEX_URL"] == raw_compat["indexes"]["pypi"]

    def test_runs_as_numeric_non_root_user(self, rendered, name):
        ins = instructions(rendered[name])
        users = [a for w, a in ins if w == "USER"]
        assert users, "no USER instruction: the image would run as root"
        uid = users[-1].split(":")[0]
        assert uid.isdigit() and int(uid) == 1000
        assert all(gid.isdigit() and gid != "0" for gid in users[-1].split(":")[1:])
        assert any(w == "RUN" and "useradd" in a and "--uid 1000" in a for w, a in ins)

    def test_nvidia_and_library_environment(self, rendered, variants, name):
        env = env_of(instructions(rendered[name]))
        assert env["NVIDIA_VISIBLE_DEVICES"] == "all"
        assert set(env["NVIDIA_DRIVER_CAPABILITIES"].split(",")) >= {"compute", "utility"}
        expected = {"cu118": "cuda>=11.0", "cu124": "cuda>=12.0", "cu126": "cuda>=12.0", "cu128": "cuda>=12.0",
                    "cu130": "cuda>=13.0"}
        assert env["NVIDIA_REQUIRE_CUDA"] == expected[variants[name]["line"]]
        assert env["NO_ALBUMENTATIONS_UPDATE"] == "1"
        assert env["OPENCV_FOR_THREADS_NUM"].isdigit() and int(env["OPENCV_FOR_THREADS_NUM"]) >= 1
        assert env["PATH"].startswith("/opt/venv/bin:") and env["VIRTUAL_ENV"] == "/opt/venv"

    def test_dlbase_labels_equal_the_variant(self, rendered, variants, raw_matrix, raw_compat, name):
        v = variants[name]
        rel = raw_compat["torch"][v["torch"]]
        line = rel["lines"][v["line"]]
        labels = labels_of(instructions(rendered[name]))
        packages = {**raw_matrix["packages"], **(v.get("packages") or {})}
        choices = raw_matrix["augmentations"]
        augmentation = choices[v.get("augmentation") or next(iter(choices))]
        want = {
            "dlbase.variant": name, "dlbase.flavor": v["flavor"], "dlbase.torch": v["torch"],
            "dlbase.torchvision": rel["torchvision"], "dlbase.cuda": line["cuda"],
            "dlbase.cuda-line": v["line"], "dlbase.cudnn": line["cudnn"], "dlbase.nccl": line["nccl"],
            "dlbase.python": v["python"], "dlbase.albumentations": augmentation["version"],
            "dlbase.opencv": packages["opencv-python-headless"], "dlbase.numpy": packages["numpy"],
            "dlbase.min-driver": raw_compat["cuda"][line["cuda"]]["min_driver"],
            "dlbase.jupyter": "true" if raw_matrix["flavors"][v["flavor"]]["jupyter"] else "false",
        }
        assert {k: labels.get(k) for k in want} == want
        base = raw_matrix["bases"][v["base"]]
        assert labels["org.opencontainers.image.base.name"] == f"{base['image']}:{base['tag']}"

    def test_flavor_specifics(self, rendered, variants, raw_matrix, name):
        v = variants[name]
        flavor = raw_matrix["flavors"][v["flavor"]]
        ins = instructions(rendered[name])
        env = env_of(ins)
        installed = apt_installed(apt_run(ins))
        exposes = [a for w, a in ins if w == "EXPOSE"]
        cmd = json.loads([a for w, a in ins if w == "CMD"][-1])
        if flavor["jupyter"]:
            assert "8888" in " ".join(exposes).split()
            assert cmd[:2] == ["jupyter", "lab"] and "--port=8888" in cmd
            assert not any("NotebookApp.token=''" in c or "--ServerApp.token=" in c for c in cmd)
        else:
            assert not exposes and "jupyter" not in cmd
        if flavor["compiler"]:
            assert "build-essential" in installed
            assert env["CUDA_HOME"] == "/usr/local/cuda" and "/usr/local/cuda/bin" in env["PATH"].split(":")
        else:
            assert not installed & COMPILERS, installed & COMPILERS
            assert "CUDA_HOME" not in env
        entry = [a for w, a in ins if w == "ENTRYPOINT"]
        assert entry and "tini" in entry[-1]

    def test_layer_order_keeps_the_heavy_layer_cached(self, rendered, name):
        ins = instructions(rendered[name])
        pips = [i for i, (w, a) in enumerate(ins) if is_install_run(w, a)]
        pip, last_pip = pips[0], pips[-1]
        apt = index_of(ins, lambda i: i[0] == "RUN" and "apt-get install" in i[1])
        tests = index_of(ins, lambda i: i[0] == "COPY" and i[1].startswith("tests/image/"))
        # (a variant not locked yet also copies its folder for its one install step)
        info = [i for i, ins_ in enumerate(ins) if ins_[0] == "COPY" and "/opt/dlbase/image.json" in landed(ins_[1])][-1]
        labels = [i for i, (w, _) in enumerate(ins) if w == "LABEL"]
        envs = [i for i, (w, _) in enumerate(ins) if w == "ENV"]
        assert apt < pip and last_pip < tests
        assert last_pip < info
        assert len(labels) == 1 and labels[0] > last_pip  # one LABEL step: one commit, not nine
        # one shared ENV before the packages; a flavor's own settings only after all of them
        assert envs and envs[0] < pip and all(e > last_pip for e in envs[1:]) and len(envs) <= 2
        # only the lock, its subsets, the install script and the installer pin feed the install layers
        copies_before = [a for w, a in ins[:last_pip] if w in ("COPY", "ADD")]
        # (a variant not locked yet has one install step, fed by its own folder)
        assert all(a.startswith(("images/_layers/", "images/_build/", f"images/{name}/ ")) for a in copies_before), \
            copies_before
