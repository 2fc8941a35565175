"""Tasks, the raw dataset export and cross-validation splits (no torch)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pathloop.client.api.errors import status_code
from pathloop.client.errors import InputError
from pathloop.client.segmentation import (
    Case,
    Channel,
    DatasetError,
    SegmentationTask,
    export_dataset,
    make_splits,
    read_dataset,
)

NUCLEI = SegmentationTask("nuclei", {"background": 0, "nucleus": 1})
UPGRADE = SegmentationTask("upgrade", {"background": 0, "nucleus": 1},
                           extra_channels=(Channel("lowquality_mask"),))


def _case(name: str, seed: int = 0, size: tuple[int, int] = (32, 48),
          extra: bool = False) -> Case:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    mask = (image.mean(axis=2) < 100).astype(np.uint8)
    return Case(name, image, mask, mask[..., None].copy() if extra else None)


def test_task_names_channels_and_labels() -> None:
    assert NUCLEI.label_names == ("background", "nucleus")
    assert NUCLEI.n_classes == 2
    assert NUCLEI.nnunet_channel_names() == {"0": "R", "1": "G", "2": "B"}
    assert not NUCLEI.separate_channel_files
    # Extra channels: each channel its own file; a mask channel is not normalised.
    assert UPGRADE.nnunet_channel_names() == {"0": "R", "1": "G", "2": "B", "3": "noNorm"}
    assert [c.nnunet_scheme for c in UPGRADE.channels] == \
        ["ZScoreNormalization"] * 3 + ["NoNormalization"]
    instance = SegmentationTask("instances", {"background": 0, "interior": 1, "boundary": 2})
    assert instance.label_names == ("background", "interior", "boundary")
    assert SegmentationTask.from_json(UPGRADE.to_json()) == UPGRADE
    assert SegmentationTask("rgb01", {"bg": 0, "fg": 1}, rgb_normalization="rgb_to_0_1") \
        .nnunet_channel_names()["0"] == "rgb_to_0_1"


@pytest.mark.parametrize("labels", [{"background": 0}, {"background": 0, "nucleus": 2},
                                    {"background": 1, "nucleus": 2}])
def test_task_refuses_labels_nnunet_cannot_train(labels: dict[str, int]) -> None:
    with pytest.raises(DatasetError, match=r"0\.\.C-1"):
        SegmentationTask("bad", labels)


def test_task_refuses_bad_names_and_normalisations() -> None:
    with pytest.raises(DatasetError, match="task name"):
        SegmentationTask("no spaces", {"a": 0, "b": 1})
    with pytest.raises(DatasetError, match="unknown normalization"):
        Channel("mask", "minmax")
    with pytest.raises(DatasetError, match="keyword"):
        Channel("CT", "zscore")
    with pytest.raises(DatasetError, match="duplicate"):
        SegmentationTask("dup", {"a": 0, "b": 1}, extra_channels=(Channel("R"),))


def test_export_writes_nnunet_raw_layout(tmp_path: Path) -> None:
    cases = (_case(f"tile{i}", seed=i) for i in range(3))  # a generator: streamed
    dataset = export_dataset(cases, tmp_path / "ds", NUCLEI, mpp=0.5)
    assert dataset.case_names == ("tile0", "tile1", "tile2")
    image = np.asarray(Image.open(tmp_path / "ds" / "imagesTr" / "tile1_0000.png"))
    label = np.asarray(Image.open(tmp_path / "ds" / "labelsTr" / "tile1.png"))
    expected = _case("tile1", seed=1)
    np.testing.assert_array_equal(image, expected.image)
    np.testing.assert_array_equal(label, expected.mask)
    meta = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "R", "1": "G", "2": "B"}
    assert meta["labels"] == {"background": 0, "nucleus": 1}
    assert meta["numTraining"] == 3
    assert meta["file_ending"] == ".png"
    assert meta["dataset"]["tile2"] == {"images": ["imagesTr/tile2_0000.png"],
                                        "label": "labelsTr/tile2.png"}
    again = read_dataset(tmp_path / "ds")
    assert again == dataset


def test_export_with_an_extra_channel_writes_one_file_per_channel(tmp_path: Path) -> None:
    dataset = export_dataset([_case("a", extra=True), _case("b", 1, extra=True)],
                             tmp_path / "ds", UPGRADE, mpp=1.0)
    files = sorted(p.name for p in (tmp_path / "ds" / "imagesTr").iterdir())
    assert files == [f"{n}_{k:04d}.png" for n in "ab" for k in range(4)]
    a = _case("a", extra=True)
    red = np.asarray(Image.open(tmp_path / "ds" / "imagesTr" / "a_0000.png"))
    extra = np.asarray(Image.open(tmp_path / "ds" / "imagesTr" / "a_0003.png"))
    np.testing.assert_array_equal(red, a.image[..., 0])
    np.testing.assert_array_equal(extra, a.mask)
    assert read_dataset(dataset.path).task == UPGRADE


@pytest.mark.parametrize(("case", "message"), [
    (Case("x", np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8), np.uint8)), "image must be"),
    (Case("x", np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), np.uint8)), "image must be"),
    (Case("x", np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9), np.uint8)), "mask must be"),
    (Case("x", np.zeros((8, 8, 3), np.uint8), np.full((8, 8), 2, np.uint8)), "outside"),
    (Case("x", np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8),
          np.zeros((8, 8, 1), np.uint8)), "task has none"),
    (Case("a/b", np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8)), "case name"),
])
def test_export_refuses_bad_cases(tmp_path: Path, case: Case, message: str) -> None:
    with pytest.raises(DatasetError, match=message) as raised:
        export_dataset([case], tmp_path / "ds", NUCLEI, mpp=0.5)
    assert isinstance(raised.value, InputError) and status_code(raised.value) == 422


def test_export_refuses_duplicates_empty_input_and_missing_extra(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="twice"):
        export_dataset([_case("a"), _case("a")], tmp_path / "one", NUCLEI, mpp=0.5)
    with pytest.raises(DatasetError, match="no cases"):
        export_dataset([], tmp_path / "two", NUCLEI, mpp=0.5)
    with pytest.raises(DatasetError, match="extra must be"):
        export_dataset([_case("a")], tmp_path / "three", UPGRADE, mpp=0.5)
    with pytest.raises(DatasetError, match="not empty"):
        export_dataset([_case("b")], tmp_path / "one", NUCLEI, mpp=0.5)
    with pytest.raises(DatasetError, match=r"no dataset\.json"):
        read_dataset(tmp_path / "nowhere")


def test_plain_tuples_are_cases(tmp_path: Path) -> None:
    case = _case("t")
    dataset = export_dataset([(case.name, case.image, case.mask)], tmp_path / "ds", NUCLEI,
                             mpp=0.25)
    assert dataset.case_names == ("t",) and dataset.mpp == 0.25


def test_splits_keep_groups_together_and_train_everywhere_on_corrections() -> None:
    names = [f"img{i}_t{j}" for i in range(7) for j in range(3)] + ["fix1", "fix2"]
    groups = {n: n.split("_")[0] for n in names if not n.startswith("fix")}
    splits = make_splits(names, 5, groups=groups, always_train=["fix1", "fix2"])
    assert len(splits) == 5
    validated = [n for s in splits for n in s["val"]]
    assert sorted(validated) == sorted(groups)  # every non-correction case exactly once
    for split in splits:
        assert {"fix1", "fix2"} <= set(split["train"])
        assert not set(split["train"]) & set(split["val"])
        assert split["val"], "no fold validates on nothing"
        assert len({groups[n] for n in split["val"]}) == len(split["val"]) // 3
    assert make_splits(names, 5, groups=groups) == make_splits(names, 5, groups=groups)


def test_splits_need_a_group_per_fold() -> None:
    with pytest.raises(DatasetError, match="groups"):
        make_splits(["a", "b", "c"], 5)
    with pytest.raises(DatasetError, match="unknown"):
        make_splits(["a", "b"], 2, always_train=["z"])


def test_a_single_fold_validates_on_a_fifth_of_the_groups() -> None:
    names = [f"c{i}" for i in range(20)]
    groups = {n: f"image{int(n[1:]) // 2}" for n in names}  # 10 images of 2 crops
    (split,) = make_splits(names, 1, groups=groups)
    assert len(split["val"]) == 4 and len(split["train"]) == 16  # 2 of 10 images held out
    assert {groups[n] for n in split["val"]}.isdisjoint(groups[n] for n in split["train"])
    (two,) = make_splits(["a", "b"], 1)  # fewer groups than parts: one of two validates
    assert len(two["val"]) == 1 and len(two["train"]) == 1
    with pytest.raises(DatasetError, match="two for a single fold"):
        make_splits(["a"], 1)
