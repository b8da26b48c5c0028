"""Named transform families the properties run over.

Factories take the image size, so crops and resizes are always valid for odd and
non-square sizes. Families are split by what holds geometrically: axis-aligned transforms
keep a rectangle a rectangle (mask and box agree to 1 px); rotations, shears and
perspective do not (the box must only contain the mask).
"""
from __future__ import annotations

from collections.abc import Callable

import albumentations as A
import cv2

Factory = Callable[[int, int], list]

AXIS_ALIGNED: dict[str, Factory] = {
    "HorizontalFlip": lambda h, w: [A.HorizontalFlip(p=1.0)],
    "VerticalFlip": lambda h, w: [A.VerticalFlip(p=1.0)],
    "Transpose": lambda h, w: [A.Transpose(p=1.0)],
    "RandomRotate90": lambda h, w: [A.RandomRotate90(p=1.0)],
    "D4": lambda h, w: [A.D4(p=1.0)],
    "Crop": lambda h, w: [A.Crop(x_min=w // 5, y_min=h // 6, x_max=w - w // 7, y_max=h - 3, p=1.0)],
    "RandomCrop": lambda h, w: [A.RandomCrop(height=2 * h // 3, width=2 * w // 3, p=1.0)],
    "CenterCrop": lambda h, w: [A.CenterCrop(height=h // 2 + 1, width=w // 2 + 1, p=1.0)],
    "Resize-up": lambda h, w: [A.Resize(height=int(h * 1.5) + 1, width=int(w * 1.25) + 1, p=1.0)],
    "Resize-down": lambda h, w: [A.Resize(height=h // 2 + 1, width=int(w * 0.6), p=1.0)],
    "RandomSizedBBoxSafeCrop": lambda h, w: [A.RandomSizedBBoxSafeCrop(height=h, width=w, p=1.0)],
    # Output 0.8x the input: the crop is at most as large as the image, so this never upscales by
    # more than ~1.15x on either axis (keypoint upscaling is a separate, known-failing case in test_aug_spatial).
    "RandomResizedCrop": lambda h, w: [
        A.RandomResizedCrop(size=(int(h * 0.8), int(w * 0.8)), scale=(0.5, 1.0), ratio=(w / h, w / h), p=1.0)
    ],
    "PadIfNeeded": lambda h, w: [A.PadIfNeeded(min_height=h + 9, min_width=w + 12, border_mode=cv2.BORDER_CONSTANT, p=1.0)],
    "Affine-scale-shift": lambda h, w: [
        A.Affine(scale=(0.75, 1.25), translate_percent=(-0.15, 0.15), rotate=0, shear=0, p=1.0)
    ],
}

NON_AXIS_ALIGNED: dict[str, Factory] = {
    "Affine-rotate": lambda h, w: [A.Affine(rotate=(-40, 40), p=1.0)],
    "Rotate": lambda h, w: [A.Rotate(limit=(-30, 30), border_mode=cv2.BORDER_CONSTANT, p=1.0)],
    "SafeRotate": lambda h, w: [A.SafeRotate(limit=(-30, 30), p=1.0)],
    "Affine-shear": lambda h, w: [A.Affine(shear=(-20, 20), p=1.0)],
    "Perspective": lambda h, w: [A.Perspective(scale=(0.05, 0.12), p=1.0)],
}

# Transforms that only touch pixel values: every spatial target must pass through untouched.
PIXEL_ONLY: dict[str, Callable[[], list]] = {
    "RandomBrightnessContrast": lambda: [A.RandomBrightnessContrast(p=1.0)],
    "HueSaturationValue": lambda: [A.HueSaturationValue(p=1.0)],
    "MotionBlur": lambda: [A.MotionBlur(p=1.0)],
    "GaussNoise": lambda: [A.GaussNoise(p=1.0)],
    "CLAHE": lambda: [A.CLAHE(p=1.0)],
    "ColorJitter": lambda: [A.ColorJitter(p=1.0)],
    "Normalize": lambda: [A.Normalize(p=1.0)],
}
