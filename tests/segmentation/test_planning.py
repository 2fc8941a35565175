"""Plans: the tiny profile patches nnU-Net's 2D plans, the nnunet profile keeps them."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.nnunet import NUCLEI, synthetic_cases

from pathloop.client.segmentation import NNUNET, TINY, export_dataset


@pytest.mark.parametrize("profile", [TINY, NNUNET], ids=["tiny", "nnunet"])
def test_plans_per_profile(tmp_path: Path, profile: object) -> None:
    from pathloop.client.segmentation import planning
    from pathloop.client.segmentation.environment import nnunet_environment

    dataset = export_dataset(synthetic_cases(5, size=96, extra=False), tmp_path / "ds",
                             NUCLEI, mpp=0.5)
    workspace = planning.prepare_workspace(tmp_path / "work", dataset)
    dataset_json = planning.load_dataset_json(dataset)
    with nnunet_environment(raw=workspace.raw, preprocessed=workspace.preprocessed,
                            results=workspace.results):
        fingerprint = planning.extract_fingerprint(workspace, dataset_json)
        plans = planning.make_plans(workspace, dataset_json, profile)  # type: ignore[arg-type]
        n_cases = planning.preprocess(workspace, plans, dataset_json)
    assert fingerprint["shapes_after_crop"] == [[1, 96, 96]] * 5
    assert n_cases == 5
    assert list(plans["configurations"]) == ["2d"]
    config = plans["configurations"]["2d"]
    arch = config["architecture"]["arch_kwargs"]
    assert config["normalization_schemes"] == ["ZScoreNormalization"] * 3
    assert config["use_mask_for_norm"] == [False] * 3
    if profile is TINY:
        assert config["patch_size"] == [128, 128] and config["batch_size"] == 4
        assert arch["features_per_stage"] == [8, 16, 32, 64]
        assert arch["n_conv_per_stage_decoder"] == [2, 2, 2]
    else:  # nnU-Net's planner decides: patch = the 96 px images, 32 base features
        assert config["patch_size"] == [96, 96]
        assert arch["features_per_stage"][0] == 32 and arch["n_stages"] >= 5
    written = sorted(p.name for p in workspace.preprocessed_dataset.iterdir())
    assert written == ["dataset.json", "dataset_fingerprint.json", "nnUNetPlans.json",
                       "nnUNetPlans_2d"]
