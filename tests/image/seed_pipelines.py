"""The seed document's pipelines, written against the installed albumentations.

The seed shows a detection pipeline, a validation pipeline, a custom CLAHE ImageOnlyTransform
and a "strong" pipeline that no albumentations release can build as written. This module
builds each one strictly (unknown arguments raise) and states what the strong one had to change.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import albumentations as A
import cv2
import numpy as np
from albumentations.pytorch import ToTensorV2


from known_bugs import VERSION as _ALBUMENTATIONS_RELEASE, version_tuple  # albumentations or albumentationsx

ALBUMENTATIONS_VERSION = version_tuple(_ALBUMENTATIONS_RELEASE)


class AdaptiveCLAHE(A.ImageOnlyTransform):
    """The seed's custom transform: CLAHE on the grey image, returned as RGB.

    Image-only, so boxes, masks and keypoints must pass through it untouched.
    """

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
        return cv2.cvtColor(clahe.apply(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)), cv2.COLOR_GRAY2RGB)


def coco_params() -> A.BboxParams:
    """The seed's bbox_params: coco boxes with one class label each."""
    return A.BboxParams(format="coco", label_fields=["class_labels"])


def detection_pipeline(seed: int | None = None, extra: list | None = None) -> A.Compose:
    """The seed's training pipeline, verbatim, plus optional extra transforms before Normalize.

    Note: RandomSizedBBoxSafeCrop(416) at p=0.5 after Resize(640) means the pipeline emits
    images of two sizes (640 and 416), which the default collate cannot stack either.
    """
    return A.Compose(
        [
            A.Resize(640, 640),
            A.RandomSizedBBoxSafeCrop(416, 416, p=0.5),
            A.HorizontalFlip(p=0.5),
            A.MotionBlur(p=0.2),
            *(extra or []),
            A.Normalize(),
            ToTensorV2(),
        ],
        bbox_params=coco_params(),
        strict=True,
        seed=seed,
    )


def colour_pipeline(seed: int | None = None) -> A.Compose:
    """The seed's timing example: 224x224 images through "colour jitter, blur, normalisation"
    (its train_transform is not spelled out; these are the three operations it names)."""
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.1, p=0.8),
            A.GaussianBlur(blur_limit=(3, 5), p=0.5),
            A.Normalize(),
            ToTensorV2(),
        ],
        strict=True,
        seed=seed,
    )


def validation_pipeline() -> A.Compose:
    """The seed's evaluation pipeline: only Resize + Normalize, so evaluation is deterministic."""
    return A.Compose([A.Resize(640, 640), A.Normalize(), ToTensorV2()], bbox_params=coco_params(), strict=True)


# Facts (checked against the changelogs): Cutout was removed in 1.4.0, MixUp existed in
# 1.4.1-1.4.17 only, Mosaic arrived in 2.0.6 with its own metadata API.
def has_cutout(v: tuple[int, ...]) -> bool:
    return v < (1, 4, 0)


def has_mixup(v: tuple[int, ...]) -> bool:
    return (1, 4, 1) <= v <= (1, 4, 17)


def has_mosaic(v: tuple[int, ...]) -> bool:
    return v >= (2, 0, 6)


@dataclass
class StrongPipeline:
    """The seed's strong pipeline as buildable here, and what had to change to build it."""

    compose: A.Compose
    missing: list[str] = field(default_factory=list)
    replacements: dict[str, str] = field(default_factory=dict)

    def report(self) -> str:
        v = ".".join(map(str, ALBUMENTATIONS_VERSION))
        lines = [f"albumentations {v}: seed strong pipeline lacks {self.missing or 'nothing'}"]
        lines += [f"  {name}: {what}" for name, what in self.replacements.items()]
        return "\n".join(lines)


def strong_pipeline(seed: int | None = None, v: tuple[int, ...] = ALBUMENTATIONS_VERSION) -> StrongPipeline:
    """Build Mosaic, MixUp, RandomBrightnessContrast, HueSaturationValue, Cutout(32x32) as far as
    the installed release allows, recording each substitution instead of silently dropping it."""
    transforms: list = []
    missing: list[str] = []
    notes: dict[str, str] = {}
    if has_mosaic(v):
        transforms.append(A.Mosaic(p=0.5))
        notes["Mosaic"] = "present (>= 2.0.6): A.Mosaic(p=0.5); extra samples go in data['mosaic_metadata']"
    else:
        missing.append("Mosaic")
        notes["Mosaic"] = "absent (arrived in 2.0.6): dropped; mosaic must be done by the dataset"
    if has_mixup(v):
        transforms.append(A.MixUp(p=0.2))  # pragma: no cover - only on 1.4.1-1.4.17
        notes["MixUp"] = "present (1.4.1-1.4.17 only): A.MixUp(p=0.2)"
    else:
        missing.append("MixUp")
        notes["MixUp"] = ("absent (existed only in 1.4.1-1.4.17): dropped, no albumentations replacement; "
                          "mix images and targets at batch level (collate / training step)")
    transforms += [A.RandomBrightnessContrast(), A.HueSaturationValue()]
    if has_cutout(v):
        transforms.append(A.Cutout(max_h_size=32, max_w_size=32))  # pragma: no cover - only on < 1.4.0
        notes["Cutout"] = "present (< 1.4.0): A.Cutout(max_h_size=32, max_w_size=32)"
    else:
        missing.append("Cutout")
        # Cutout's defaults were num_holes=8 fixed-size holes, fill 0; max_h_size/max_w_size are gone.
        transforms.append(A.CoarseDropout(num_holes_range=(8, 8), hole_height_range=(32, 32),
                                          hole_width_range=(32, 32), fill=0, p=0.5))
        notes["Cutout"] = ("absent (removed in 1.4.0): A.CoarseDropout(num_holes_range=(8, 8), "
                           "hole_height_range=(32, 32), hole_width_range=(32, 32), fill=0, p=0.5)")
    compose = A.Compose(transforms, bbox_params=coco_params(), strict=True, seed=seed)
    return StrongPipeline(compose, missing, notes)


def build_strong_pipeline_as_written() -> A.Compose:
    """The seed's strong pipeline literally; expected to fail on every release."""
    return A.Compose([
        A.Mosaic(p=0.5),
        A.MixUp(p=0.2),
        A.RandomBrightnessContrast(),
        A.HueSaturationValue(),
        A.Cutout(max_h_size=32, max_w_size=32),
    ], strict=True)
