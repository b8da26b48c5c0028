"""Everything a build needs, derived from one variant and the compatibility table.

A variant in the matrix names only its choices (torch, wheel line, flavor, base). The
spec joins it with compat.yaml so that the Dockerfile, the lock, the labels, the tags and
the expectations of the in-image tests all come from one place and cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlbase.define import tags
from dlbase.define.compat import Compat, Finding, Release, StackResult, WheelLine, check_stack
from dlbase.core.errors import Incompatible
from dlbase.define.matrix import Matrix, Variant
from dlbase.define import labels as image_labels
from dlbase.define.lock import PLATFORM as lock_platform
from dlbase.core.inimage import IMAGE_ROOT

LOCK_IN_IMAGE = f"{IMAGE_ROOT}/requirements.lock"
INFO_IN_IMAGE = f"{IMAGE_ROOT}/image.json"
TESTS_IN_IMAGE = f"{IMAGE_ROOT}/tests"
ENTRYPOINT_IN_IMAGE = f"{IMAGE_ROOT}/entrypoint.sh"
PREFLIGHT_IN_IMAGE = f"{IMAGE_ROOT}/preflight.py"
VENV = "/opt/venv"
#: The newest file time in an image's layers (2023-11-14T22:13:20Z): every RUN ends by setting
#: newer mtimes to it and the build context is staged with it, so two builds write the same
#: layer bytes and BuildKit's exporter has nothing to rewrite. Not the commit time: a value
#: that RUN steps read is part of their cache key, so a commit time would reinstall every
#: layer at each commit; the image's own created time is still the commit time.
FILE_EPOCH = 1700000000
VARIANT_LABEL = image_labels.VARIANT  # the names are dlbase.define.labels'; these are the names importers know
JUPYTER_LABEL = image_labels.JUPYTER
#: The per-layer install script and the uv pin it fetches (see images/_build/install_group.py).
#: Both are in one folder, copied into IMAGE_ROOT whole (a folder into an existing folder).
INSTALL_DIR = "images/_build"
INSTALL_SCRIPT = f"{INSTALL_DIR}/install_group.py"
INSTALL_SCRIPT_IN_IMAGE = f"{IMAGE_ROOT}/install_group.py"
INSTALLER_LOCK = f"{INSTALL_DIR}/installer.lock"
INSTALLER_LOCK_IN_IMAGE = f"{IMAGE_ROOT}/installer.lock"
INSTALLER_LOCK_NAME = "installer"  # its name for `dlbase lock`
LOCK_PLATFORM = lock_platform  # dlbase.define.lock.PLATFORM, by the name the builder knows


def check_variant(compat: Compat, variant: Variant) -> StackResult:
    """The compat findings for a variant plus the checks only a variant can fail."""
    res = check_stack(compat, torch=variant.torch, line=variant.line, python=variant.python,
                      name=variant.name)
    base = variant.base
    if variant.python != base.python:
        res.findings.append(Finding(
            "python", f"the base {base.tag_ref} ships Python {base.python}, not {variant.python}",
            f"set python: \"{base.python}\" or choose a base with Python {variant.python}"))
    line = compat.release(variant.torch).lines.get(variant.line) if compat.release(variant.torch) else None
    if variant.flavor.compiler and base.cuda_toolkit is None:
        res.findings.append(Finding(
            "base", f"flavor {variant.flavor.name} needs a CUDA compiler but base {base.key} has no CUDA toolkit",
            "use a -devel base whose cuda_toolkit matches the wheel line"))
    if line is not None and base.cuda_toolkit is not None and base.cuda_toolkit != line.cuda:
        res.findings.append(Finding(
            "base", f"base {base.key} carries CUDA toolkit {base.cuda_toolkit} but the {line.name} wheels "
                    f"are built for CUDA {line.cuda}: extensions compiled here would not match torch",
            f"use a base with CUDA {line.cuda}"))
    if not base.pinned:
        res.findings.append(Finding(
            "base", f"base {base.tag_ref} is not pinned by digest", "run `dlbase pin` where its registry "
            "can be reached; until then a rebuild may get a different base", severity="warning"))
    return res


@dataclass(frozen=True)
class BuildSpec:
    """A validated variant with every derived fact."""

    variant: Variant
    release: Release
    line: WheelLine
    index_url: str
    extra_index_urls: tuple[str, ...]
    require_cuda: str
    min_driver: str
    minor_floor_driver: str
    arch_list: tuple[str, ...]

    @classmethod
    def of(cls, compat: Compat, variant: Variant) -> "BuildSpec":
        res = check_variant(compat, variant)
        if not res.ok:
            errs = [f for f in res.findings if f.severity == "error"]
            raise Incompatible(f"variant {variant.name}: {errs[0].message}", hint=errs[0].suggestion,
                               details=[f.message for f in errs[1:]])
        release = compat.release(variant.torch)
        line = release.lines[variant.line]
        index, extra = compat.index_urls(release, variant.line)
        floor = compat.minor_floor(line.cuda)
        return cls(variant=variant, release=release, line=line, index_url=index,
                   extra_index_urls=tuple(extra), require_cuda=floor.require_cuda,
                   min_driver=compat.min_driver(line.cuda), minor_floor_driver=floor.min_driver,
                   arch_list=compat.arch_lists.get(variant.line, ()))

    @property
    def name(self) -> str:
        return self.variant.name

    @property
    def on_pypi(self) -> bool:
        """True when the whole lock resolves from PyPI (the release's default line)."""
        return not self.extra_index_urls

    def requirements(self) -> list[str]:
        """Top-level pins of the image's Python environment, in a stable order."""
        reqs = [f"torch=={self.release.torch}", f"torchvision=={self.release.torchvision}"]
        reqs += [f"{pkg}=={ver}" for pkg, ver in sorted(self.variant.packages.items())]
        return reqs

    def versions(self) -> dict[str, str | None]:
        """What the image must contain; read back and compared after every build."""
        pk = self.variant.packages
        return {
            "torch": self.release.torch,
            "torchvision": self.release.torchvision,
            "cuda": self.line.cuda,
            "cudnn": self.line.cudnn,
            "nccl": self.line.nccl,
            "python": self.variant.python,
            "albumentations": pk.get(self.variant.augmentation or "albumentations"),  # the module's, either library
            "opencv": pk.get("opencv-python-headless"),
            "numpy": pk.get("numpy"),
        }

    @property
    def moving_tag(self) -> str:
        """The tag that follows the newest build of this variant (``2.6-cu124-runtime-debian12``).
        Only torch's major.minor enters it, so the variant's and the image's versions agree."""
        return tags.moving_tag(torch=self.release.torch, line=self.line.name, flavor=self.variant.flavor.name,
                               os_name=self.variant.base.os)

    def static_labels(self) -> dict[str, str]:
        """Labels fixed by the variant. Build-time labels (created, revision, lock hash,
        base digest) are added by the builder so they never invalidate the layer cache."""
        v = self.versions()
        labels = {
            image_labels.TITLE: f"dlbase {self.name}",
            image_labels.DESCRIPTION: (
                f"PyTorch {v['torch']} ({self.line.name}, CUDA {v['cuda']}, cuDNN {v['cudnn']}) "
                f"+ Albumentations {v['albumentations']} on {self.variant.base.os}, {self.variant.flavor.name}"),
            image_labels.BASE_NAME: self.variant.base.tag_ref,
            "dlbase.managed": "true",
            VARIANT_LABEL: self.name,
            image_labels.FLAVOR: self.variant.flavor.name,
            JUPYTER_LABEL: "true" if self.variant.flavor.jupyter else "false",
            "dlbase.torch": v["torch"],
            "dlbase.torchvision": v["torchvision"],
            "dlbase.cuda": v["cuda"],
            "dlbase.cuda-line": self.line.name,
            "dlbase.cudnn": v["cudnn"],
            "dlbase.nccl": v["nccl"],
            "dlbase.python": v["python"],
            "dlbase.albumentations": v["albumentations"] or "",
            "dlbase.opencv": v["opencv"] or "",
            "dlbase.numpy": v["numpy"] or "",
            "dlbase.min-driver": self.min_driver,
        }
        return labels

    def image_info(self, compat: Compat) -> dict:
        """The facts the in-image test suite checks against (tests/image reads this file;
        it cannot import dlbase, which is not in the image)."""
        v = self.versions()
        return {
            "variant": self.name,
            "flavor": self.variant.flavor.name,
            "torch": v["torch"],
            "torchvision": v["torchvision"],
            "torchaudio": None,
            "cuda": v["cuda"],
            "cuda_line": self.line.name,
            "cudnn": v["cudnn"],
            "nccl": v["nccl"],
            "python": v["python"],
            "albumentations": v["albumentations"],
            "opencv": v["opencv"],
            "numpy": v["numpy"],
            "jupyter": self.variant.flavor.jupyter,
            "compiler": self.variant.flavor.compiler,
            "arch_list": list(self.arch_list),
            # The preflight compares the host driver with these (minor-version compatibility
            # floor: the image runs there; full floor: every feature of the CUDA release).
            "minor_floor_driver": self.minor_floor_driver,
            "min_driver": self.min_driver,
            "lock_file": LOCK_IN_IMAGE,
            "compatible_pairs": compat.pairs(cuda_major=self.line.cuda_major),
        }


def installer_lock_spec(matrix: Matrix):  # -> dlbase.define.lock.LockSpec | None
    """The resolver input of images/_build/installer.lock: the matrix's uv pin, for the image
    platform (uv's wheels are py3-none, so the default variant's Python serves every image).
    None when the installer is pip: nothing is fetched, so there is nothing to lock."""
    from dlbase.define.lock import LockSpec

    requirement = matrix.installer.requirement
    if requirement is None:
        return None
    return LockSpec(variant=INSTALLER_LOCK_NAME, requirements=[requirement],
                    python_version=matrix.get(matrix.default).python, platform=LOCK_PLATFORM)


def lock_spec(spec: BuildSpec, constraints: list[str] | None = None):  # -> dlbase.define.lock.LockSpec
    """The resolver input of a variant: its pins, its Python, the image's platform, its indexes,
    and the pins of its parent flavor's lock (see :func:`dlbase.define.layering.parent_constraints`)."""
    from dlbase.define.lock import LockSpec

    return LockSpec(variant=spec.name, requirements=spec.requirements(), python_version=spec.variant.python,
                    platform=LOCK_PLATFORM, index_url=spec.index_url,
                    extra_index_urls=list(spec.extra_index_urls), constraints=list(constraints or []))
