"""The instance model: 3-class targets, seeded watershed, exact TTA, a real short training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from support.folds import ThresholdFolds

from pathloop.client.errors import InputError
from pathloop.client.quality.instances import (
    INSTANCE_TASK,
    TTA,
    apply_transform,
    instance_targets,
    instances_from_probabilities,
    invert_transform,
    predict_instances,
    train_instance_model,
)
from pathloop.client.segmentation import TINY, ModelCard


def test_targets_on_hand_made_labels() -> None:
    labels = np.zeros((9, 12), np.int32)
    labels[1:8, 1:6] = 7    # a 7×5 block
    labels[1:8, 6:11] = 3   # touching it on the right
    targets = instance_targets(labels, boundary_width=1)
    assert targets.dtype == np.uint8
    assert (targets[labels == 0] == 0).all()
    # Width 1: the outermost ring of each block is boundary, the touching columns included.
    expected_interior = np.zeros_like(labels, bool)
    expected_interior[2:7, 2:5] = True
    expected_interior[2:7, 7:10] = True
    assert ((targets == 1) == expected_interior).all()
    assert ((targets == 2) == ((labels > 0) & ~expected_interior)).all()
    # Width 2 eats one more ring; a block 3 px wide has no interior left.
    wide = instance_targets(labels, boundary_width=2)
    assert ((wide == 1) == np.pad(np.ones((3, 1), bool), ((3, 3), (3, 8)))
            | np.pad(np.ones((3, 1), bool), ((3, 3), (8, 3)))).all()
    # A nucleus cut by the array's edge is not outlined along the cut.
    edge = np.zeros((6, 6), np.int32)
    edge[:, :4] = 1
    assert (instance_targets(edge, boundary_width=1)[:, 0] == 1)[1:-1].all()


def test_targets_refuse_bad_labels() -> None:
    with pytest.raises(InputError, match="integer"):
        instance_targets(np.zeros((4, 4), np.float32))
    with pytest.raises(InputError, match=">= 0"):
        instance_targets(-np.ones((4, 4), np.int32))
    with pytest.raises(InputError, match="boundary_width"):
        instance_targets(np.zeros((4, 4), np.int32), boundary_width=0)


def _two_touching_discs() -> tuple[NDArray[np.float32], NDArray[np.int32]]:
    """Probabilities of two discs of radius 12 whose centres are 20 px apart."""
    rows, cols = np.mgrid[:48, :64]
    truth = np.zeros((48, 64), np.int32)
    for number, centre in ((1, 22), (2, 42)):
        truth[(rows - 24) ** 2 + (cols - centre) ** 2 <= 12 ** 2] = number
    targets = instance_targets(truth, boundary_width=2)
    probs = np.full((3, 48, 64), 0.05, np.float32)
    for c in range(3):
        probs[c][targets == c] = 0.9
    return probs, truth


def test_watershed_separates_two_touching_discs() -> None:
    probs, truth = _two_touching_discs()
    assert np.unique(truth[truth > 0]).size == 2
    labels = instances_from_probabilities(probs)
    assert labels.dtype == np.int32 and labels.shape == truth.shape
    assert sorted(np.unique(labels).tolist()) == [0, 1, 2]
    for number in (1, 2):
        best = np.bincount(labels[truth == number]).argmax()
        assert best > 0
        inter = np.sum((labels == best) & (truth == number))
        union = np.sum((labels == best) | (truth == number))
        assert inter / union > 0.9
    # Thresholding the foreground without seeds would have given one merged object.
    foreground = np.argmax(probs, axis=0) > 0
    from scipy import ndimage
    assert ndimage.label(foreground)[1] == 1


def test_watershed_keeps_unseeded_foreground_and_drops_specks() -> None:
    probs = np.zeros((3, 32, 32), np.float32)
    probs[0] = 1.0
    probs[:, 4:12, 4:12] = np.array([0.1, 0.3, 0.6])[:, None, None]  # all boundary: no seed
    probs[:, 20:22, 20:22] = np.array([0.0, 1.0, 0.0])[:, None, None]  # a 4 px speck
    labels = instances_from_probabilities(probs, min_size=10)
    assert np.unique(labels).tolist() == [0, 1]
    assert (labels[4:12, 4:12] == 1).all() and (labels[20:22, 20:22] == 0).all()
    with pytest.raises(InputError, match=r"\(3, H, W\)"):
        instances_from_probabilities(np.zeros((2, 8, 8), np.float32))


def test_transforms_are_the_dihedral_group_and_invert_exactly() -> None:
    tile = np.arange(2 * 5 * 5 * 3).reshape(2, 5, 5, 3)
    seen = set()
    for name in TTA:
        moved = apply_transform(tile, name, axes=(1, 2))
        seen.add(moved.tobytes())
        assert (invert_transform(moved, name, axes=(1, 2)) == tile).all(), name
    assert len(seen) == 8  # all distinct


class _Recording(ThresholdFolds):
    """The fake ensemble, keeping what it was asked to predict.

    A box blur of the darkness, thresholded: it commutes with every flip and rotation, so
    a correctly de-augmented softmax is the untransformed tile's softmax.
    """

    def __init__(self) -> None:
        super().__init__(n_folds=2, n_classes=3, radius=2, spread=0.03)
        self.seen: list[NDArray[np.uint8]] = []

    def predict_folds(self, images: NDArray[np.uint8]) -> NDArray[np.float32]:
        self.seen.append(images.copy())
        return super().predict_folds(images)


def test_tta_de_augments_exactly() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(200, 256, (3, 24, 24, 3), dtype=np.uint8)
    images[:, 3:11, 4:9] = 20     # dark blocks, placed without any symmetry: nuclei for
    images[:, 14:20, 12:22] = 60  # the fake, the second darker at its core
    images[:, 16:18, 14:20] = 10
    fake = _Recording()
    predictions = predict_instances(fake, images, batch_size=2)
    assert len(predictions) == 3 and len(fake.seen) == 2 * len(TTA)  # 2 batches × 8
    # What the predictor saw under transform t is the transformed tile.
    for t, name in enumerate(TTA):
        assert (fake.seen[t] == apply_transform(images[:2], name, axes=(1, 2))).all()
    # Mapped back, every transform's member is the plain prediction's, fold by fold.
    plain = _Recording().predict_folds(images)
    for b, prediction in enumerate(predictions):
        assert len(prediction.members) == 2 * len(TTA)
        for k in range(2):
            expected = instances_from_probabilities(plain[k, b])
            assert expected.max() >= 2
            for t in range(len(TTA)):
                assert (prediction.members[k * len(TTA) + t] == expected).all(), (k, TTA[t])
        assert (prediction.labels
                == instances_from_probabilities(plain[:, b].mean(axis=0))).all()


def test_predict_refuses_what_it_cannot_do() -> None:
    fake = ThresholdFolds(n_folds=1, n_classes=3)
    with pytest.raises(InputError, match="square"):
        predict_instances(fake, np.zeros((1, 8, 16, 3), np.uint8))
    assert len(predict_instances(fake, np.zeros((1, 8, 16, 3), np.uint8),
                                 transforms=("identity", "flip-x", "rot180"))) == 1
    with pytest.raises(InputError, match="unknown transforms"):
        predict_instances(fake, np.zeros((1, 8, 8, 3), np.uint8), transforms=("shear",))
    with pytest.raises(InputError, match="3 classes"):
        predict_instances(ThresholdFolds(n_classes=2), np.zeros((1, 8, 8, 3), np.uint8))


def _synthetic_crops(n: int, seed: int) -> list[tuple[str, NDArray[np.uint8], NDArray[np.int32]]]:
    """Pink tiles with dark purple discs, some touching: what nuclei look like."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:64, :64]
    crops = []
    for i in range(n):
        labels = np.zeros((64, 64), np.int32)
        for number in range(1, 6):
            r, c = rng.integers(10, 54, 2)
            labels[((rows - r) ** 2 + (cols - c) ** 2 <= 7 ** 2) & (labels == 0)] = number
        image = np.empty((64, 64, 3), np.uint8)
        image[:] = (235, 190, 215)
        image[labels > 0] = (70, 40, 120)
        image = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
        crops.append((f"crop{i}", image, labels))
    return crops


@pytest.mark.slow
def test_a_short_real_training_gives_a_one_fold_three_class_model(tmp_path: Path) -> None:
    from pathloop.client.segmentation import Ensemble

    crops = _synthetic_crops(10, seed=1)
    profile = TINY.with_overrides(num_epochs=2, iterations_per_epoch=4,
                                  val_iterations_per_epoch=1, patch_size=(64, 64), seed=0)
    groups = {name: f"image{i // 2}" for i, (name, _, _) in enumerate(crops)}
    card = train_instance_model(crops, tmp_path / "model", profile=profile, mpp=0.25,
                                groups=groups)
    assert isinstance(card, ModelCard)
    assert card.n_folds == 1 and card.task == INSTANCE_TASK
    assert card.n_training_cases == 10
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # the dataset was cleaned up
    ensemble = Ensemble.load(tmp_path / "model")
    images = np.stack([image for _, image, _ in crops[:2]])
    predictions = predict_instances(ensemble, images, transforms=("identity", "rot90"))
    assert len(predictions) == 2 and len(predictions[0].members) == 2
    assert predictions[0].labels.shape == (64, 64) and predictions[0].labels.dtype == np.int32
