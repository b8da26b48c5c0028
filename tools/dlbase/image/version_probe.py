"""Read what a built image really contains, from inside it.

This file's source is sent into the container (`python -c`), so it must run on the
image's own Python with only the image's packages: no dlbase imports, stdlib + what it
probes. It prints one JSON object; the builder compares it with the variant before any
tag is applied (a tag is derived from the image, never trusted from configuration).
"""

import json
import sys


def _dist_version(name):
    try:
        from importlib import metadata
        return metadata.version(name)
    except Exception:  # noqa: BLE001 - absent distribution reads as None
        return None


def probe():
    out = {"python": "%d.%d" % sys.version_info[:2], "python_full": sys.version.split()[0]}
    try:
        import torch
        out["torch_full"] = torch.__version__
        out["torch"] = torch.__version__.split("+")[0]
        out["cuda"] = torch.version.cuda
        try:
            out["cudnn_int"] = torch.backends.cudnn.version()
        except Exception as exc:  # noqa: BLE001
            out["cudnn_int"] = None
            out["cudnn_error"] = repr(exc)
        try:
            out["nccl"] = ".".join(str(p) for p in torch.cuda.nccl.version())
        except Exception:  # noqa: BLE001
            out["nccl"] = None
    except Exception as exc:  # noqa: BLE001
        out["torch_error"] = repr(exc)
    for key, dist in (("torchvision", "torchvision"), ("torchaudio", "torchaudio"),
                      ("albumentations", "albumentations"), ("opencv", "opencv-python-headless"),
                      ("opencv_gui", "opencv-python"), ("opencv_contrib", "opencv-contrib-python"),
                      ("numpy", "numpy"), ("cudnn_wheel", "nvidia-cudnn-cu12"),
                      ("cudnn_wheel_cu11", "nvidia-cudnn-cu11"), ("nccl_wheel", "nvidia-nccl-cu12")):
        out[key] = _dist_version(dist)
    out["albumentations"] = out["albumentations"] or _dist_version("albumentationsx")  # same module, either library
    if out.get("torchvision"):
        out["torchvision"] = out["torchvision"].split("+")[0]
    try:
        import cv2
        out["cv2"] = cv2.__version__
    except Exception as exc:  # noqa: BLE001
        out["cv2_error"] = repr(exc)
    try:
        from importlib import metadata
        out["packages"] = {d.metadata["Name"]: d.version for d in metadata.distributions()}
    except Exception as exc:  # noqa: BLE001
        out["packages_error"] = repr(exc)
    return out


if __name__ == "__main__":
    sys.stdout.write("DLBASE_PROBE " + json.dumps(probe(), sort_keys=True) + "\n")
