"""How the image runs: a non-root default user, the run-time environment, a sound Python
environment, the right tools for its flavor, and a GPU when the host has one."""

from __future__ import annotations

from typing import Any

import pytest

VENV_PYTHON = "/opt/venv/bin/python"
COMPILERS = ("gcc", "cc", "c++", "g++", "clang", "nvcc")
OTHER_OPENCV = ("opencv-python", "opencv-contrib-python", "opencv-contrib-python-headless")


@pytest.mark.check("default user is not root")
def test_default_user_is_not_root(expect: dict[str, Any], default_host) -> None:
    user = expect["config_user"]
    assert user, "the image sets no USER: containers run as root"
    name = user.split(":", 1)[0]
    assert name not in ("root", "0"), f"the image's USER is {user!r}: containers run as root"
    uid = default_host.check_output("id -u")
    assert uid.strip() != "0", f"USER {user!r} resolves to uid 0 inside the image"


@pytest.mark.check("run-time environment (NVIDIA_*, NO_ALBUMENTATIONS_UPDATE)")
def test_runtime_environment_variables(expect: dict[str, Any], env: dict[str, str]) -> None:
    problems = []
    if env.get("NVIDIA_VISIBLE_DEVICES") in (None, "", "void"):
        problems.append(f"NVIDIA_VISIBLE_DEVICES is {env.get('NVIDIA_VISIBLE_DEVICES')!r} (the runtime exposes no GPU)")
    caps = set((env.get("NVIDIA_DRIVER_CAPABILITIES") or "").split(","))
    if not ({"compute", "utility"} <= caps or "all" in caps):
        problems.append(f"NVIDIA_DRIVER_CAPABILITIES is {env.get('NVIDIA_DRIVER_CAPABILITIES')!r}, "
                        "needs compute,utility")
    require = env.get("NVIDIA_REQUIRE_CUDA")
    if not require or not require.startswith("cuda>="):
        problems.append(f"NVIDIA_REQUIRE_CUDA is {require!r}: the runtime cannot refuse a too-old driver")
    elif expect.get("require_cuda") and require != expect["require_cuda"]:
        problems.append(f"NVIDIA_REQUIRE_CUDA is {require!r}, the variant's floor is {expect['require_cuda']!r}")
    if env.get("NO_ALBUMENTATIONS_UPDATE") != "1":
        problems.append("NO_ALBUMENTATIONS_UPDATE=1 is not set (albumentations calls home at import)")
    if env.get("OPENCV_FOR_THREADS_NUM") != "1":
        problems.append("OPENCV_FOR_THREADS_NUM=1 is not set (every DataLoader worker starts all cores' threads)")
    assert not problems, "; ".join(problems)


@pytest.mark.check("pip check is clean")
def test_pip_check_is_clean(host) -> None:
    res = host.run(f"{VENV_PYTHON} -m pip check")
    assert res.rc == 0, " | ".join((res.stdout + res.stderr).strip().splitlines()[:5])


@pytest.mark.check("only headless OpenCV")
def test_only_headless_opencv(probe: dict[str, Any], host) -> None:
    import json

    dists = {d["name"].lower(): d["version"]
             for d in json.loads(host.check_output(f"{VENV_PYTHON} -m pip list --format=json"))}
    assert "opencv-python-headless" in dists, "opencv-python-headless is not installed"
    others = [f"{n}=={dists[n]}" for n in OTHER_OPENCV if n in dists]
    assert not others, f"besides opencv-python-headless, {', '.join(others)} is installed (both ship cv2)"
    assert not probe.get("cv2_error"), f"cv2 does not import: {probe['cv2_error']}"


@pytest.mark.check("compiler only in devel flavors")
def test_compiler_matches_the_flavor(expect: dict[str, Any], host) -> None:
    found = [c for c in COMPILERS if host.exists(c)]
    if expect["compiler"]:
        assert "gcc" in found or "cc" in found, f"the {expect['flavor']} flavor promises a compiler; none found"
        # Extensions are built through torch.utils.cpp_extension, which imports setuptools: the
        # venv layer keeps pip only, so a compiler flavor must pin setuptools in its own packages.
        res = host.run(f"{VENV_PYTHON} -c 'import torch.utils.cpp_extension'")
        assert res.rc == 0, f"torch.utils.cpp_extension does not import: {res.stderr.strip()[-300:]}"
    else:
        assert not found, f"the {expect['flavor']} flavor must not ship a compiler, found: {', '.join(found)}"


@pytest.mark.gpu
@pytest.mark.check("GPU visible in the container")
def test_gpu_is_visible_in_the_container(expect: dict[str, Any], host) -> None:
    if not expect["gpus"]:
        reason = "the Docker daemon has no NVIDIA runtime, so the container got no GPU (CPU host)"
        if expect["require_gpu"]:
            pytest.fail(f"--require-gpu given but {reason}", pytrace=False)
        pytest.skip(reason)
    res = host.run("nvidia-smi -L")
    assert res.rc == 0 and "GPU " in res.stdout, f"nvidia-smi -L in the container: {res.stderr.strip() or res.stdout.strip()}"
