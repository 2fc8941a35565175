"""Ensemble benchmark: our 5-fold sliding-window inference beside nnU-Net's predictor and
beside the bare forward passes it is made of.

All paths predict one slide (the CMU region, 0.499 µm/px) at the model's 0.5 µm/px with the
same 5 folds of a real tiny nnU-Net (128² patches), by windows of the patch, half a patch
apart, Gaussian-weighted, and end with the UGA uncertainty
``u = -(1/K) Σ_k Σ_c p̄_c log(p_k,c + 1e-8)``. The model divides RGB by 255 (nnU-Net's
``rgb_to_0_1``), so no path depends on normalisation statistics:

ours-all
    :func:`pathloop.client.inference.predict_slide` over every window of the slide (a tissue
    mask of all ones, nothing masked): the same windows nnU-Net predicts, into the zarr
    rasters of a temporary store.
ours
    The product default: only the windows that hold tissue.
ours-all-f32
    ours-all with the networks in float32 (``precision = "float32"``). The other paths of
    ours and bare run in the site default, ``auto``: bfloat16 on a CPU that computes it
    natively (this one has AVX512-BF16), float32 elsewhere; this row shows what that part
    of the speed is.
nnunet-mem (the like-for-like peer)
    nnU-Net's own code with nothing on disk: the slide region read into memory once,
    normalised by its preprocessor (``run_case_npy``), one ``nnUNetPredictor`` built once,
    its network run with each fold's entry of ``predictor.list_of_parameters`` through
    ``predict_sliding_window_return_logits`` (CPU, no mirroring, ``tile_step_size=0.5``,
    Gaussian): the same windows ours-all predicts, combined into the same maps. nnU-Net
    runs float32 on a CPU (it enables autocast only on CUDA), so ours-all-f32 is its
    like-for-like row in precision, ours-all in what a site runs. The goals are judged
    against this peer.
nnunet (the naive path)
    The slide region written as one PNG; for each fold, nnU-Net's own ``nnUNetPredictor``
    (CPU, no mirroring, ``tile_step_size=0.5``, Gaussian) with ``save_probabilities=True``,
    one ``.npz`` per fold; then the 5 loaded with numpy and combined into the same maps.
    nnU-Net spaces its windows evenly between the image's edges (ours sit on a lattice
    fixed at the slide's origin), so the maps differ a little: the |Δu| column.
bare-all, bare
    Only the 5 folds' forward passes (:meth:`Ensemble.predict_logits`) over exactly the
    windows ours-all and ours predict once each, pixels read beforehand and untimed: the
    compute floor. Goal: ours ≤ 1.25 × bare over the same windows.

Each path runs in a fresh process, the paths in turn (in reverse every other round), timed
from after its imports (model loading, reading, and all writing included); peak RSS is the
process's ``VmHWM``, plus the sampled peak of the whole process tree (nnU-Net spawns
workers), counted as in :class:`process_memory.TreePeak`. Goals: nnunet-mem / ours-all ≥ 3
(the file-based nnunet / ours-all is printed beside it, but it is not like for like: much of
it is nnU-Net's disk round trip); ours-all / bare-all ≤ 1.25 and ours / bare ≤ 1.25. Run it
on an otherwise idle machine.

The model (5 folds of the ``tiny`` profile, 1 epoch of 5 iterations on 20 MoNuSeg tiles,
quality irrelevant for speed) is trained once and cached in ``--workdir``.

Run: ``.venv/bin/python bench/ensemble.py``. Prints a table and writes
``bench/results/ensemble.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from nnunet_peers import run_nnunet_files, run_nnunet_memory
from process_memory import TreePeak, memory

from pathloop.client.segmentation.model_card import CARD_NAME, ModelCard
from pathloop.client.tiling import TissueMask, compute_tissue_mask
from pathloop.client.wsi import open_slide

RESULTS = Path(__file__).resolve().parent / "results"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"  # ../shared/data
CMU_REGION = SHARED_DATA / "wsi" / "cmu_small_region.svs"
MONUSEG = SHARED_DATA / "nuclei" / "monuseg" / "train"
MODEL_MPP = 0.5  # MoNuSeg's 0.25 µm/px images halved
N_IMAGES = 5  # 4 tiles each: 20 training cases, 4 validation cases per fold
GOAL_PEER_RATIO = 3.0
GOAL_COMPUTE_RATIO = 1.25
# name: (runner, every window, precision of ours and bare)
PATHS: dict[str, tuple[str, bool, str]] = {
    "ours-all": ("ours", True, "auto"), "ours": ("ours", False, "auto"),
    "nnunet-mem": ("nnunet-mem", True, "float32"), "nnunet": ("nnunet", True, "float32"),
    "bare-all": ("bare", True, "auto"),
    "bare": ("bare", False, "auto"), "ours-all-f32": ("ours", True, "float32"),
}


def _monuseg_cases(n_images: int) -> list[Any]:
    """256² tiles at 0.5 µm/px from MoNuSeg training images, 4 per image (read in place)."""
    import tifffile
    from PIL import Image

    from pathloop.client.segmentation import Case

    cases = []
    for path in sorted((MONUSEG / "images").glob("*.tif"))[:n_images]:
        image = Image.fromarray(tifffile.imread(path)[..., :3])
        mask = Image.open(MONUSEG / "masks" / f"{path.stem}.png")
        side = image.width // 2
        image_ = np.asarray(image.resize((side, side), Image.Resampling.BILINEAR))
        mask_ = np.asarray(mask.resize((side, side), Image.Resampling.NEAREST)).astype(np.uint8)
        for y in (0, side - 256):
            for x in (0, side - 256):
                cases.append(Case(f"{path.stem[:12]}_y{y}_x{x}",
                                  np.ascontiguousarray(image_[y:y + 256, x:x + 256]),
                                  np.ascontiguousarray(mask_[y:y + 256, x:x + 256])))
    return cases


def _model(workdir: Path) -> tuple[Path, bool]:
    """The cached model folder, trained first if missing; and whether it was trained now."""
    model_dir = workdir / "model-rgb01"
    if (model_dir / CARD_NAME).is_file():
        return model_dir, False
    from pathloop.client.segmentation import TINY, SegmentationTask, export_dataset, train_ensemble

    partial = workdir / "model-partial"
    for leftover in (workdir / "dataset", partial):
        shutil.rmtree(leftover, ignore_errors=True)
    print("training a tiny 5-fold model (cached for later runs)…", flush=True)
    started = time.perf_counter()
    task = SegmentationTask("nuclei", {"background": 0, "nucleus": 1},
                            rgb_normalization="rgb_to_0_1")
    dataset = export_dataset(_monuseg_cases(N_IMAGES), workdir / "dataset", task, mpp=MODEL_MPP)
    profile = TINY.with_overrides(num_epochs=1, iterations_per_epoch=5,
                                  val_iterations_per_epoch=1)
    train_ensemble(dataset, partial, profile=profile, device="cpu")
    partial.rename(model_dir)
    print(f"  trained in {time.perf_counter() - started:.0f} s", flush=True)
    return model_dir, True


# --- the paths, each in its own child process -------------------------------------------

def _tissue(slide: Any, every_window: bool) -> TissueMask:
    """The slide's tissue mask, or one of all ones (every window is predicted)."""
    tissue = compute_tissue_mask(slide)
    if every_window:
        return TissueMask(np.ones_like(tissue.mask), tissue.mpp, tissue.base_mpp)
    return tissue


def _windows(slide: Any, ensemble: Any, tissue: TissueMask) -> list[tuple[int, int]]:
    """The distinct windows ``(y, x)`` predict_slide predicts (each once)."""
    from pathloop.client.inference import InferenceLayout, TissueLookup

    layout = InferenceLayout.for_slide(slide, mpp=ensemble.mpp, patch=ensemble.patch_size)
    lookup = TissueLookup(tissue, layout.mpp)
    rows = layout.window_rows()
    found: set[tuple[int, int]] = set()
    for x0, x1 in layout.stripes():
        cols = layout.window_cols(x0, x1)
        on = layout.on_tissue(lookup, rows, cols)
        found |= {(int(rows[i]), int(cols[j])) for i, j in zip(*np.nonzero(on), strict=True)}
    return sorted(found)


def _run_ours(cfg: dict[str, Any]) -> dict[str, Any]:
    """Our product path into a temporary store; the uncertainty raster saved for comparing."""
    from pathloop.client.inference import predict_slide
    from pathloop.client.segmentation.ensemble import Ensemble  # torch loads here, untimed
    from pathloop.client.settings import SiteSettings
    from pathloop.client.store import Store
    from pathloop.client.usecases.slides import ingest_slide

    slide_path, out = Path(cfg["slide"]), Path(cfg["out"])
    settings = SiteSettings(data_dir=out / "store", slide_roots=(slide_path.parent,))
    with Store.open(settings) as store:
        record = ingest_slide(settings, store, slide_path).slide
        sampler = TreePeak()
        sampler.start()
        started = time.perf_counter()
        ensemble = Ensemble.load(cfg["model"], precision=cfg["precision"])
        with open_slide(slide_path) as slide:
            tissue = _tissue(slide, cfg["every_window"])
            result = predict_slide(slide, tissue, ensemble, store.rasters, record.id,
                                   mask_background=not cfg["every_window"])
        seconds = time.perf_counter() - started
        figures = {"seconds": seconds, "windows": result.n_windows,
                   "precision": ensemble.precision, **memory(sampler)}
        np.save(out / "uncertainty.npy", store.rasters.open_raster(result.uncertainty).read())
    return figures


def _run_bare(cfg: dict[str, Any]) -> dict[str, Any]:
    """The folds' forward passes alone over the windows ours predicts, pixels read first."""
    from pathloop.client.inference.prediction import PIXELS_PER_BATCH
    from pathloop.client.segmentation.ensemble import Ensemble

    ensemble = Ensemble.load(cfg["model"], precision=cfg["precision"])
    with open_slide(Path(cfg["slide"])) as slide:
        windows = _windows(slide, ensemble, _tissue(slide, cfg["every_window"]))
        rows, cols = ensemble.patch_size
        factor = ensemble.mpp / slide.metadata.mpp
        pixels = np.stack([slide.read_region(round(x * factor), round(y * factor), cols, rows,
                                             ensemble.mpp) for y, x in windows])
    per_batch = max(1, PIXELS_PER_BATCH // (rows * cols))
    sampler = TreePeak()
    sampler.start()
    started = time.perf_counter()
    for start in range(0, len(pixels), per_batch):
        ensemble.predict_logits(pixels[start:start + per_batch])
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "windows": len(windows), "precision": ensemble.precision,
            **memory(sampler)}


# --- the parent ---------------------------------------------------------------------------

def _child(kind: str, cfg: dict[str, Any], log: Path) -> dict[str, Any]:
    """Run one path in a fresh process; its figures (its console output goes to ``log``)."""
    cfg_path = Path(cfg["out"]) / "config.json"
    shutil.rmtree(cfg["out"], ignore_errors=True)
    cfg_path.parent.mkdir(parents=True)
    cfg_path.write_text(json.dumps(cfg))
    with log.open("w") as console:
        done = subprocess.run([sys.executable, __file__, "--child", kind, str(cfg_path)],
                              stdout=console, stderr=subprocess.STDOUT, check=False)
    if done.returncode:
        sys.exit(f"{kind} failed (exit {done.returncode}); see {log}")
    figures: dict[str, Any] = json.loads((Path(cfg["out"]) / "figures.json").read_text())
    return figures


def _compared(ours: Path, peer: Path) -> dict[str, float]:
    """Uncertainty of ours vs a peer's (nnU-Net's, or ours in float32) over the slide, beyond
    a patch from its edges."""
    a = np.load(ours).astype(np.float32)[128:-128, 128:-128]
    b = np.load(peer).astype(np.float32)[128:-128, 128:-128]
    diff = np.abs(a - b)
    return {"pixels": int(a.size), "ours_mean_u": round(float(a.mean()), 4),
            "peer_mean_u": round(float(b.mean()), 4),
            "mean_abs_diff": round(float(diff.mean()), 5),
            "correlation": round(float(np.corrcoef(a.ravel(), b.ravel())[0, 1]), 5)}


_RUNNERS = {"ours": _run_ours, "bare": _run_bare, "nnunet": run_nnunet_files,
            "nnunet-mem": run_nnunet_memory}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/pathloop-bench-ensemble"))
    parser.add_argument("--slide", type=Path, default=CMU_REGION)
    parser.add_argument("--processes", type=int, default=1,
                        help="nnU-Net's preprocessing and export workers")
    parser.add_argument("--rounds", type=int, default=1, help="median of rounds")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    for needed in (args.slide, MONUSEG):
        if not needed.exists():
            sys.exit(f"error: {needed} missing (../shared/data beside the repository)")
    if args.child:
        kind, cfg_path = args.child
        cfg = json.loads(Path(cfg_path).read_text())
        figures = _RUNNERS[kind](cfg)
        (Path(cfg["out"]) / "figures.json").write_text(json.dumps(figures))
        return

    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    model_dir, trained_now = _model(workdir)
    card = ModelCard.read(model_dir)
    base = {"slide": str(args.slide.resolve()), "model": str(model_dir), "mpp": card.mpp,
            "folds": list(card.folds), "processes": args.processes}
    load = os.getloadavg()[0]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in PATHS}
    for number in range(args.rounds):
        # Every other round runs the paths in reverse: a machine that speeds up or slows
        # down over the run then favours no path.
        for name in list(PATHS) if number % 2 == 0 else list(PATHS)[::-1]:
            print(f"round {number + 1}/{args.rounds}: {name}…", flush=True)
            runner, every_window, precision = PATHS[name]
            cfg = {**base, "out": str(workdir / f"run-{name}"), "every_window": every_window,
                   "precision": precision}
            runs[name].append(_child(runner, cfg, workdir / f"{name}.log"))
    rows: dict[str, dict[str, Any]] = {}
    for name, results in runs.items():
        rows[name] = {
            "seconds": round(statistics.median(r["seconds"] for r in results), 2),
            "seconds_all_rounds": [round(r["seconds"], 2) for r in results],
            "windows": results[-1]["windows"], "precision": results[-1]["precision"],
            **{key: max(r[key] for r in results) for key in ("peak_rss_mib", "tree_peak_mib")},
        }
    for peer in ("nnunet", "nnunet-mem"):
        rows[peer]["stages_s"] = runs[peer][-1]["stages_s"]
        rows[peer]["uncertainty_vs_ours_all"] = _compared(
            workdir / "run-ours-all" / "uncertainty.npy",
            workdir / f"run-{peer}" / "uncertainty.npy")
    rows["ours-all"]["uncertainty_vs_f32"] = _compared(
        workdir / "run-ours-all" / "uncertainty.npy",
        workdir / "run-ours-all-f32" / "uncertainty.npy")

    def ratio(slower: str, faster: str, digits: int = 2) -> float:
        return round(rows[slower]["seconds"] / rows[faster]["seconds"], digits)

    ratios = {
        "nnunet_mem_over_ours_all": ratio("nnunet-mem", "ours-all"),
        "ours_all_over_bare_all": ratio("ours-all", "bare-all", 3),
        "ours_over_bare": ratio("ours", "bare", 3),
        "nnunet_mem_over_ours_all_f32": ratio("nnunet-mem", "ours-all-f32"),
        "nnunet_mem_over_ours": ratio("nnunet-mem", "ours"),
        "nnunet_over_ours_all": ratio("nnunet", "ours-all"),
        "nnunet_over_nnunet_mem": ratio("nnunet", "nnunet-mem"),
    }
    met = {"nnunet_mem_over_ours_all": ratios["nnunet_mem_over_ours_all"] >= GOAL_PEER_RATIO,
           "ours_all_over_bare_all": ratios["ours_all_over_bare_all"] <= GOAL_COMPUTE_RATIO,
           "ours_over_bare": ratios["ours_over_bare"] <= GOAL_COMPUTE_RATIO}

    print(f"\n{args.slide.name} at {card.mpp} µm/px, {card.n_folds} folds, windows of "
          f"{card.patch_size[0]}² px step 0.5 (median of {args.rounds} round(s), load average "
          f"{load:.1f} at start)")
    print(f"{'path':>12} {'s':>8} {'windows':>8} {'precision':>9} {'RSS MiB':>8} "
          f"{'tree MiB':>9}")
    for name, row in rows.items():
        print(f"{name:>12} {row['seconds']:>8} {row['windows']!s:>8} {row['precision']:>9} "
              f"{row['peak_rss_mib']:>8} {row['tree_peak_mib']:>9}")
    for key, value in ratios.items():
        goal = "" if key not in met else ("  (goal met)" if met[key] else "  (GOAL MISSED)")
        print(f"{key:>29}: {value}{goal}")
    for peer in ("nnunet-mem", "nnunet"):
        print(f"{'|Δu| ' + peer + ' vs ours-all':>29}: "
              f"{rows[peer]['uncertainty_vs_ours_all']['mean_abs_diff']}")
    print(f"{'|Δu| ours-all vs f32':>29}: "
          f"{rows['ours-all']['uncertainty_vs_f32']['mean_abs_diff']}")
    summary = {
        "slide": args.slide.name, "mpp": card.mpp, "rounds": args.rounds,
        "load_average_at_start": round(load, 2), "nnunet_processes": args.processes,
        "model": {"folds": card.n_folds, "patch_size": list(card.patch_size),
                  "training_seconds": card.training_seconds, "trained_now": trained_now},
        "paths": rows, "ratios": ratios, "goals_met": met, "goal_met": all(met.values()),
        "goals": {"nnunet_mem_over_ours_all_at_least": GOAL_PEER_RATIO,
                  "ours_all_over_bare_all_at_most": GOAL_COMPUTE_RATIO,
                  "ours_over_bare_at_most": GOAL_COMPUTE_RATIO},
        "command": " ".join([".venv/bin/python", "bench/ensemble.py", *sys.argv[1:]]),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ensemble.json").write_text(json.dumps(summary, indent=2))
    print(f"→ {RESULTS / 'ensemble.json'}")


if __name__ == "__main__":
    main()
