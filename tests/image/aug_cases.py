"""Explicit case generators for the augmentation properties.

Each property runs over several seeds, image sizes (square, odd widths, non-square, both
orientations) and box positions (interior, touching each border, the whole image), not one
hand-picked case. Generators are plain functions so a failing id reads as its inputs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SEEDS: tuple[int, ...] = (0, 1, 2)
# (height, width): square, odd width, portrait with odd sides, wide and short.
SIZES: tuple[tuple[int, int], ...] = ((64, 64), (97, 131), (120, 81), (50, 203))


@dataclass
class Case:
    """One labelled sample: image, per-box masks, pascal_voc boxes, labels and keypoints."""

    seed: int
    height: int
    width: int
    image: np.ndarray
    boxes: np.ndarray  # (N, 4) pascal_voc, integer-valued, pixel-edge coordinates
    labels: list[int]
    keypoints: np.ndarray  # (K, 2) xy, integer pixel centres
    keypoint_labels: list[int]
    box_masks: list[np.ndarray] = field(default_factory=list)  # one uint8 mask per box

    @property
    def ident(self) -> str:
        return f"seed{self.seed}-{self.height}x{self.width}"


def border_boxes(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Boxes touching the left/top, right/bottom borders, the whole image, plus interior ones.

    Sides are at least 6 px so nearest-neighbour resampling cannot make a box vanish.
    """
    def size(limit: int) -> int:
        return int(rng.integers(6, max(7, limit // 2)))

    w1, h1, w2, h2 = size(width), size(height), size(width), size(height)
    boxes = [
        [0, 0, w1, h1],  # touches left and top
        [width - w2, height - h2, width, height],  # touches right and bottom
        [0, height - h1, w2, height],  # touches left and bottom
        [0, 0, width, height],  # the whole image
    ]
    for _ in range(2):  # interior boxes at random places
        bw, bh = size(width), size(height)
        x1 = int(rng.integers(1, width - bw))
        y1 = int(rng.integers(1, height - bh))
        boxes.append([x1, y1, x1 + bw, y1 + bh])
    return np.asarray(boxes, dtype=np.float64)


def make_case(seed: int, height: int, width: int, n_keypoints: int = 6, margin: int = 0) -> Case:
    """Build a random textured image with boxes at borders and inside, and matching masks.

    margin keeps keypoints that far from the border (blob tests need room for the blob).
    """
    rng = np.random.default_rng(seed * 1000 + height * 7 + width)
    image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    boxes = border_boxes(height, width, rng)
    labels = [int(v) for v in rng.integers(0, 80, size=len(boxes))]
    masks = []
    for x1, y1, x2, y2 in boxes.astype(int):
        mask = np.zeros((height, width), dtype=np.uint8)
        mask[y1:y2, x1:x2] = 1
        masks.append(mask)
    if margin == 0:
        corners = [[0, 0], [width - 1, height - 1], [width - 1, 0], [0, height - 1]]
    else:
        corners = [[width // 2, height // 2]]  # the centre survives every crop we run
    extra = max(0, n_keypoints - len(corners))
    xs = rng.integers(margin, width - margin, size=extra)
    ys = rng.integers(margin, height - margin, size=extra)
    keypoints = np.asarray(corners + list(zip(xs.tolist(), ys.tolist())), dtype=np.float64)
    kp_labels = list(range(len(keypoints)))
    return Case(seed, height, width, image, boxes, labels, keypoints, kp_labels, masks)


def all_cases(margin: int = 0) -> list[Case]:
    """The seed x size grid every property runs over."""
    return [make_case(seed, h, w, margin=margin) for seed in SEEDS for (h, w) in SIZES]


def case_params(margin: int = 0) -> list[tuple[int, int, int]]:
    """(seed, height, width) triples for pytest.mark.parametrize (cases are built lazily)."""
    return [(seed, h, w) for seed in SEEDS for (h, w) in SIZES]


def case_id(params: tuple[int, int, int]) -> str:
    seed, h, w = params
    return f"seed{seed}-{h}x{w}"
