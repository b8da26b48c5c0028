"""A small detection dataset, a ragged-box collate and a worker_init_fn for DataLoader tests.

Lives in its own module so DataLoader workers (fork, forkserver or spawn) can import it.
"""
from __future__ import annotations

from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info


def worker_init_fn(worker_id: int) -> None:
    """Limit OpenCV to one thread per worker and give each worker its own augmentation stream.

    OpenCV's own thread pool inside N workers oversubscribes the CPU. albumentations 2.0.x
    keeps its random state inside each Compose, and every worker starts from a copy of the
    parent's state, so the pipeline is reseeded from torch's per-worker seed (which differs by
    worker and follows the DataLoader's generator, keeping runs reproducible).
    """
    cv2.setNumThreads(0)
    info = get_worker_info()
    dataset = info.dataset if info is not None else None
    if isinstance(dataset, DetectionDataset):
        dataset.reseed(torch.initial_seed() % 2**32)


class DetectionDataset(Dataset):
    """Synthetic detection samples: varied image sizes and box counts (including zero boxes)."""

    SIZES = ((360, 480), (353, 481), (300, 300), (240, 427))

    def __init__(self, length: int, transform: A.Compose, same_input: bool = False) -> None:
        self.length = length
        self.transform = transform
        self.same_input = same_input

    def __len__(self) -> int:
        return self.length

    def reseed(self, seed: int) -> None:
        self.transform.set_random_seed(seed)

    def raw(self, index: int) -> dict[str, Any]:
        """The untransformed sample for index (deterministic, so tests can recompute it)."""
        key = 0 if self.same_input else index
        rng = np.random.default_rng(key)
        h, w = self.SIZES[key % len(self.SIZES)]
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        boxes = []
        for _ in range(key % 5):  # 0..4 boxes
            bw, bh = int(rng.integers(20, w // 2)), int(rng.integers(20, h // 2))
            boxes.append([float(rng.integers(0, w - bw)), float(rng.integers(0, h - bh)), float(bw), float(bh)])
        labels = np.arange(len(boxes), dtype=np.int64) + 1
        return {"image": image, "bboxes": np.asarray(boxes, np.float32).reshape(-1, 4), "class_labels": labels}

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.raw(index)
        out = self.transform(**sample)
        info = get_worker_info()
        return {
            "image": out["image"],
            "bboxes": torch.as_tensor(np.asarray(out["bboxes"], np.float32).reshape(-1, 4)),
            "class_labels": torch.as_tensor(np.asarray(out["class_labels"], np.int64).reshape(-1)),
            "index": index,
            "n_input_boxes": len(sample["bboxes"]),
            "worker_id": -1 if info is None else info.id,
            "cv2_threads": cv2.getNumThreads(),
        }


def detection_collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack images (zero-padding bottom/right to the batch's largest, which leaves coco/pascal
    box coordinates valid) and keep boxes and labels as per-image lists of their own length."""
    images = [s["image"] for s in samples]
    height = max(int(i.shape[-2]) for i in images)
    width = max(int(i.shape[-1]) for i in images)
    batch = images[0].new_zeros((len(images), images[0].shape[0], height, width))
    for k, image in enumerate(images):
        batch[k, :, : image.shape[-2], : image.shape[-1]] = image
    return {
        "image": batch,
        "image_sizes": torch.tensor([[int(i.shape[-2]), int(i.shape[-1])] for i in images]),
        "bboxes": [s["bboxes"] for s in samples],
        "class_labels": [s["class_labels"] for s in samples],
        "index": torch.tensor([s["index"] for s in samples]),
        "n_input_boxes": [s["n_input_boxes"] for s in samples],
        "worker_id": [s["worker_id"] for s in samples],
        "cv2_threads": [s["cv2_threads"] for s in samples],
    }
