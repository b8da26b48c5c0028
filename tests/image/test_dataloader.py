"""DataLoader: the seed's detection pipeline through worker processes, with ragged boxes."""
from __future__ import annotations

import albumentations as A
import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, default_collate

import seed_pipelines as S
from known_bugs import known_bug
from loader_utils import DetectionDataset, detection_collate, worker_init_fn

# pin_memory=True is what the seed asks for; on a CPU host torch warns that nothing gets pinned.
pytestmark = pytest.mark.filterwarnings("ignore:.*pin_memory.*:UserWarning")


def loader(dataset: DetectionDataset, seed: int = 0, init=worker_init_fn, **kw) -> DataLoader:
    options = dict(batch_size=4, num_workers=2, pin_memory=True, persistent_workers=True, prefetch_factor=2,
                   collate_fn=detection_collate, worker_init_fn=init, generator=torch.Generator().manual_seed(seed))
    options.update(kw)
    return DataLoader(dataset, **options)


def test_detection_dataset_loads_through_workers_with_each_image_keeping_its_box_count() -> None:
    """Validation pipeline (no filtering): every image keeps exactly its own number of boxes."""
    dataset = DetectionDataset(12, S.validation_pipeline())
    dl = loader(dataset)
    for epoch in range(2):  # persistent workers serve a second epoch
        seen = []
        for batch in dl:
            assert batch["image"].shape[1:] == (3, 640, 640)
            for boxes, labels, n in zip(batch["bboxes"], batch["class_labels"], batch["n_input_boxes"], strict=True):
                assert boxes.shape == (n, 4) and labels.shape == (n,), f"epoch {epoch}: {boxes.shape} for {n} boxes"
            if torch.cuda.is_available():
                assert batch["image"].is_pinned()
            seen += batch["index"].tolist()
        assert sorted(seen) == list(range(12))
    assert len({w for b in dl for w in b["worker_id"]}) == 2


def test_seed_detection_pipeline_loads_through_workers_with_boxes_and_labels_in_step() -> None:
    dataset = DetectionDataset(16, S.detection_pipeline(seed=0))
    for batch in loader(dataset):
        assert batch["image"].dtype == torch.float32 and batch["image"].shape[1] == 3
        for (h, w), boxes, labels, n in zip(batch["image_sizes"].tolist(), batch["bboxes"], batch["class_labels"],
                                            batch["n_input_boxes"], strict=True):
            assert (h, w) in {(640, 640), (416, 416)}
            assert len(boxes) == len(labels) <= n
            if len(boxes):
                assert (boxes[:, 0] >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= w + 1e-3).all()
                assert (boxes[:, 1] >= 0).all() and (boxes[:, 1] + boxes[:, 3] <= h + 1e-3).all()


def test_default_collate_fails_on_images_with_different_box_counts() -> None:
    """The seed's `batch['bboxes'].to('cuda')` assumes a stackable tensor; with ragged boxes the
    default collate raises instead, which is why detection needs a list-keeping collate."""
    dataset = DetectionDataset(3, S.validation_pipeline())
    samples = [dataset[i] for i in range(3)]  # 0, 1 and 2 boxes
    assert len({len(s["bboxes"]) for s in samples}) == 3
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        default_collate(samples)


def test_worker_init_limits_opencv_threads_inside_each_worker() -> None:
    dataset = DetectionDataset(8, S.validation_pipeline())
    threads = {t for batch in loader(dataset, persistent_workers=False) for t in batch["cv2_threads"]}
    assert threads == {1}, f"OpenCV reported {threads} threads inside workers (setNumThreads(0) reports 1)"
    if cv2.getNumThreads() > 1:  # control: without the init function workers keep OpenCV's pool
        no_init = {t for b in loader(dataset, init=None, persistent_workers=False) for t in b["cv2_threads"]}
        assert no_init != {1}, "the control run already had one OpenCV thread; the check proves nothing"


def _streams(dataset: DetectionDataset, init) -> dict[int, list[bytes]]:
    """Per worker, the augmented outputs of identical inputs, in order."""
    out: dict[int, list[bytes]] = {}
    for batch in loader(dataset, init=init, batch_size=1, persistent_workers=False):
        out.setdefault(batch["worker_id"][0], []).append(batch["image"].numpy().tobytes())
    return out


def random_geometry() -> A.Compose:
    return A.Compose([A.Affine(rotate=(-180, 180), translate_percent=(-0.2, 0.2), p=1.0), A.Resize(32, 32),
                      A.Normalize(), S.ToTensorV2()], bbox_params=S.coco_params(), strict=True, seed=7)


def test_dataloader_workers_get_different_augmentation_streams() -> None:
    """With worker_init_fn reseeding, worker 0 and worker 1 augment identical inputs differently."""
    streams = _streams(DetectionDataset(8, random_geometry(), same_input=True), worker_init_fn)
    assert len(streams) == 2
    a, b = streams.values()
    assert all(x != y for x, y in zip(a, b)), "two workers produced the same augmentation"


@known_bug("2.0.8",
           "albumentations <= 2.0.8 keeps the random state inside Compose; every DataLoader "
           "worker starts from a copy of the parent's state, so without a reseeding worker_init_fn "
           "all workers draw the same augmentations")
def test_dataloader_workers_get_different_augmentation_streams_without_worker_init() -> None:
    streams = _streams(DetectionDataset(8, random_geometry(), same_input=True), None)
    a, b = streams.values()
    assert all(x != y for x, y in zip(a, b)), "two workers produced the same augmentation"


def test_seeded_dataloader_reproduces_every_batch_exactly() -> None:
    def run() -> list:
        dataset = DetectionDataset(8, S.detection_pipeline(seed=0))
        return [(b["image"], b["bboxes"], b["class_labels"]) for b in loader(dataset, seed=123, persistent_workers=False)]

    for (i1, b1, l1), (i2, b2, l2) in zip(run(), run(), strict=True):
        assert torch.equal(i1, i2)
        assert all(torch.equal(x, y) for x, y in zip(b1, b2)) and all(torch.equal(x, y) for x, y in zip(l1, l2))
