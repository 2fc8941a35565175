"""The nnU-Net peers of ``bench/ensemble.py``: nnU-Net's own code over the same slide region,
in memory (the like-for-like peer) and as its predictor is usually run, files in and out.

Both end with the same UGA map as ours, ``u = -(1/K) Σ_k Σ_c p̄_c log(p_k,c + 1e-8)``, computed
here with numpy from nnU-Net's per-fold probabilities. Each runs in the benchmark's child
process and returns its figures.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from process_memory import TreePeak, memory

from pathloop.client.wsi import open_slide


def _predictor(model: str, folds: tuple[int, ...]) -> Any:
    """nnU-Net's predictor on the CPU: no mirroring, windows half a patch apart, Gaussian."""
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=False,
                                perform_everything_on_device=False,
                                device=torch.device("cpu"), allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(model, use_folds=folds,
                                                   checkpoint_name="checkpoint_final.pth")
    return predictor


def _uga(p: np.ndarray) -> np.ndarray:
    """UGA uncertainty of ``(K, C, H, W)`` per-fold probabilities."""
    mean = p.mean(axis=0)
    return -(mean[None] * np.log(p + 1e-8)).sum(axis=1).mean(axis=0)


def run_nnunet_memory(cfg: dict[str, Any]) -> dict[str, Any]:
    """nnU-Net's preprocessor, sliding window and networks, one predictor, all in memory."""
    import torch

    slide_path, out, folds = Path(cfg["slide"]), Path(cfg["out"]), cfg["folds"]
    sampler = TreePeak()
    sampler.start()
    started = time.perf_counter()
    predictor = _predictor(cfg["model"], tuple(folds))
    with open_slide(slide_path) as slide:
        width, height = slide.size_at(cfg["mpp"])
        region = slide.read_region(0, 0, width, height, cfg["mpp"])
    data = region.transpose(2, 0, 1)[:, None].astype(np.float32)  # (C, 1, H, W): its 2D IO
    preprocessor = predictor.configuration_manager.preprocessor_class(verbose=False)
    normalised, _, _ = preprocessor.run_case_npy(
        data, None, {"spacing": [999.0, *predictor.configuration_manager.spacing]},
        predictor.plans_manager, predictor.configuration_manager, predictor.dataset_json)
    image = torch.from_numpy(normalised)
    stages = {"read_and_preprocess": time.perf_counter() - started}
    probabilities = []
    for fold, parameters in zip(folds, predictor.list_of_parameters, strict=True):
        fold_started = time.perf_counter()
        predictor.network.load_state_dict(parameters)
        logits = predictor.predict_sliding_window_return_logits(image)
        probabilities.append(torch.softmax(logits[:, 0].float(), 0).numpy())
        stages[f"fold_{fold}"] = time.perf_counter() - fold_started
    combine_started = time.perf_counter()
    p = np.stack(probabilities)  # (K, C, H, W)
    uga = _uga(p)
    stages["combine"] = time.perf_counter() - combine_started
    seconds = time.perf_counter() - started
    np.save(out / "uncertainty.npy", uga.astype(np.float32))
    return {"seconds": seconds, "windows": None, "precision": "float32", **memory(sampler),
            "stages_s": {k: round(v, 2) for k, v in stages.items()}}


def run_nnunet_files(cfg: dict[str, Any]) -> dict[str, Any]:
    """The slide as one PNG, nnU-Net's predictor once per fold to .npz, combined with numpy."""
    from PIL import Image

    slide_path, out, folds = Path(cfg["slide"]), Path(cfg["out"]), cfg["folds"]
    images, probabilities = out / "images", out / "probabilities"
    sampler = TreePeak()
    sampler.start()
    started = time.perf_counter()
    with open_slide(slide_path) as slide:
        width, height = slide.size_at(cfg["mpp"])
        images.mkdir(parents=True)
        Image.fromarray(slide.read_region(0, 0, width, height, cfg["mpp"])).save(
            images / "slide_0000.png")
    stages = {"export": time.perf_counter() - started}
    for fold in folds:
        fold_started = time.perf_counter()
        predictor = _predictor(cfg["model"], (fold,))
        predictor.predict_from_files(
            str(images), str(probabilities / f"fold_{fold}"), save_probabilities=True,
            num_processes_preprocessing=cfg["processes"],
            num_processes_segmentation_export=cfg["processes"])
        stages[f"fold_{fold}"] = time.perf_counter() - fold_started
    combine_started = time.perf_counter()
    p = np.stack([np.load(probabilities / f"fold_{k}" / "slide.npz")["probabilities"][:, 0]
                  for k in folds])  # (K, C, H, W): nnU-Net's 2D images are 3D
    uga = _uga(p)
    np.save(out / "uncertainty.npy", uga.astype(np.float32))
    stages["combine"] = time.perf_counter() - combine_started
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "windows": None, "precision": "float32", **memory(sampler),
            "stages_s": {k: round(v, 2) for k, v in stages.items()}}
