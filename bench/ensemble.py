"""Ensemble benchmark: our 5-fold uncertainty over a slide region beside nnU-Net's predictor.

Both paths predict the same tissue tiles of one slide region with the same 5 folds of a real
tiny nnU-Net and end with the UGA uncertainty ``u = -(1/K) Σ_k Σ_c p̄_c log(p_k,c + 1e-8)``:

ours
    :func:`pathloop.client.inference.predict_slide` with :class:`Ensemble`: every fold's
    network loaded once, tiles read from the slide and batched in memory, the fold mean,
    argmax and uncertainty maps stitched into the zarr rasters of a temporary store.
peer (the naive path)
    The same tiles written as PNG files; for each fold, nnU-Net's own ``nnUNetPredictor``
    (CPU, no mirroring, default ``tile_step_size``) with ``save_probabilities=True``, one
    ``.npz`` per tile and fold; then the 5 sets loaded with numpy and combined into the same
    maps, stitched into region-sized arrays. Two variants: ``tile`` sets the plans' patch
    to the tile size, so each tile is one window of the same forward pass as ours (same
    network work, same numbers); ``plans`` keeps the trained patch and nnU-Net's sliding
    window (step 0.5, Gaussian blending): about 3× the network work, and other numbers
    (instance norm sees each 128² window instead of the whole tile).

Each path runs in a fresh process timed from after its imports (model loading, tissue mask,
reading tiles and all writing included); peak RSS is the process's ``VmHWM`` from
``/proc/self/status``, plus the sampled peak of the whole process tree (nnU-Net's predictor
spawns preprocessing and export workers; ours has none), counted as in :class:`_TreePeak`. The
uncertainty of each peer is compared with ours on the tissue pixels of the predicted cores.
Goal: peer seconds / our seconds ≥ 3. Run it on an otherwise idle machine: under other jobs'
load the single-process path loses more than the peer's several processes do.

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
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from pathloop.client.inference import InferenceLayout
from pathloop.client.segmentation.model_card import CARD_NAME, ModelCard
from pathloop.client.tiling import compute_tissue_mask
from pathloop.client.wsi import open_slide

RESULTS = Path(__file__).resolve().parent / "results"
CMU_REGION = Path("/work/shared/data/wsi/cmu_small_region.svs")
MONUSEG = Path("/work/shared/data/nuclei/monuseg/train")
MODEL_MPP = 0.5  # MoNuSeg's 0.25 µm/px images halved
N_IMAGES = 5  # 4 tiles each: 20 training cases, 4 validation cases per fold
GOAL_RATIO = 3.0
PEER_VARIANTS = ("tile", "plans")


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
    model_dir = workdir / "model"
    if (model_dir / CARD_NAME).is_file():
        return model_dir, False
    from pathloop.client.segmentation import TINY, SegmentationTask, export_dataset, train_ensemble

    partial = workdir / "model-partial"
    for leftover in (workdir / "dataset", partial):
        shutil.rmtree(leftover, ignore_errors=True)
    print("training a tiny 5-fold model (cached for later runs)…", flush=True)
    started = time.perf_counter()
    task = SegmentationTask("nuclei", {"background": 0, "nucleus": 1})
    dataset = export_dataset(_monuseg_cases(N_IMAGES), workdir / "dataset", task, mpp=MODEL_MPP)
    profile = TINY.with_overrides(num_epochs=1, iterations_per_epoch=5,
                                  val_iterations_per_epoch=1)
    train_ensemble(dataset, partial, profile=profile, device="cpu")
    partial.rename(model_dir)
    print(f"  trained in {time.perf_counter() - started:.0f} s", flush=True)
    return model_dir, True


def _peer_model_folder(model_dir: Path, target: Path, patch: int | None) -> Path:
    """An nnU-Net trained-model folder over our model's files (symlinks).

    Our model folder already has nnU-Net's layout; only the ``tile`` variant needs its own
    ``plans.json`` (the configuration's patch set to the tile, ``patch`` pixels square).
    """
    card = ModelCard.read(model_dir)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    plans = json.loads((model_dir / "plans.json").read_text())
    if patch is not None:
        plans["configurations"][card.configuration]["patch_size"] = [patch, patch]
    (target / "plans.json").write_text(json.dumps(plans, indent=1))
    (target / "dataset.json").symlink_to(model_dir / "dataset.json")
    for fold in card.folds:
        (target / f"fold_{fold}").mkdir()
        (target / f"fold_{fold}" / "checkpoint_final.pth").symlink_to(
            model_dir / f"fold_{fold}" / "checkpoint_final.pth")
    return target


# --- measuring, inside the child processes ------------------------------------------------

def _proc_kib(pid: int | str, key: str, file: str = "status") -> int:
    """A ``kB`` field of ``/proc/<pid>/<file>``; 0 once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass  # the process ended meanwhile
    return 0


def _descendants(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        for task in Path(f"/proc/{stack.pop()}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            stack += children
    return found


class _TreePeak(threading.Thread):
    """Samples the memory of this process and its descendants every 100 ms.

    Counted as the anonymous PSS of every process, summed, plus the largest file-backed RSS
    of any one of them. Summed RSS would count twice what forked workers still share with
    their parent, and summed PSS would divide the libraries' pages with unrelated processes
    of the machine; the workers map the same libraries, so those count once.
    """

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kib = 0
        self._done = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self._done.wait(0.1):
            tree = [me, *_descendants(me)]
            total = sum(_proc_kib(p, "Pss_Anon", "smaps_rollup") for p in tree) + max(
                _proc_kib(p, "RssFile") for p in tree)
            self.peak_kib = max(self.peak_kib, total)

    def stop(self) -> float:
        self._done.set()
        self.join()
        return round(self.peak_kib / 1024, 1)


def _memory(sampler: _TreePeak) -> dict[str, float]:
    return {"peak_rss_mib": round(_proc_kib("self", "VmHWM") / 1024, 1),
            "tree_peak_mib": sampler.stop()}


def _blocks(slide: Any, mpp: float, tile: int, overlap: int) -> tuple[Any, Any, list[Any]]:
    tissue = compute_tissue_mask(slide)
    layout = InferenceLayout.for_slide(slide, mpp=mpp, tile_size=tile, overlap=overlap)
    return tissue, layout, layout.blocks(tissue)


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
        sampler = _TreePeak()
        sampler.start()
        started = time.perf_counter()
        ensemble = Ensemble.load(cfg["model"])
        with open_slide(slide_path) as slide:
            tissue = compute_tissue_mask(slide)
            result = predict_slide(slide, tissue, ensemble, store.rasters, record.id,
                                   tile_size=cfg["tile"], overlap=cfg["overlap"])
        seconds = time.perf_counter() - started
        figures = {"seconds": seconds, "tiles": result.n_tiles, **_memory(sampler)}
        np.save(out / "uncertainty.npy", store.rasters.open_raster(result.uncertainty).read())
    return figures


def _run_peer(cfg: dict[str, Any]) -> dict[str, Any]:
    """Tiles to PNG, nnU-Net's predictor once per fold to .npz, combined with numpy."""
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from PIL import Image

    slide_path, out, folds = Path(cfg["slide"]), Path(cfg["out"]), cfg["folds"]
    images, probabilities = out / "images", out / "probabilities"
    sampler = _TreePeak()
    sampler.start()
    started = time.perf_counter()
    with open_slide(slide_path) as slide:
        _, layout, blocks = _blocks(slide, cfg["mpp"], cfg["tile"], cfg["overlap"])
        images.mkdir(parents=True)
        for i, block in enumerate(blocks):
            pixels = slide.read_region(block.read_x, block.read_y, cfg["tile"], cfg["tile"],
                                       layout.mpp)
            Image.fromarray(pixels).save(images / f"tile{i:04d}_0000.png")
    stages = {"export_tiles": time.perf_counter() - started}
    for fold in folds:
        fold_started = time.perf_counter()
        predictor = nnUNetPredictor(use_mirroring=False, perform_everything_on_device=False,
                                    device=torch.device("cpu"), allow_tqdm=False)
        predictor.initialize_from_trained_model_folder(
            cfg["peer_model"], use_folds=(fold,), checkpoint_name="checkpoint_final.pth")
        predictor.predict_from_files(
            str(images), str(probabilities / f"fold_{fold}"), save_probabilities=True,
            num_processes_preprocessing=cfg["processes"],
            num_processes_segmentation_export=cfg["processes"])
        stages[f"fold_{fold}"] = time.perf_counter() - fold_started
    combine_started = time.perf_counter()
    uga = np.zeros(layout.shape, np.float32)
    prediction = np.zeros(layout.shape, np.uint8)
    m = layout.margin
    for i, block in enumerate(blocks):
        p = np.stack([np.load(probabilities / f"fold_{k}" / f"tile{i:04d}.npz")["probabilities"]
                      for k in folds])  # (K, C, 1, H, W): nnU-Net's 2D images are 3D
        p = p[:, :, 0, m:m + block.height, m:m + block.width]
        mean = p.mean(axis=0)
        box = np.s_[block.y:block.y + block.height, block.x:block.x + block.width]
        uga[box] = -(mean[None] * np.log(p + 1e-8)).sum(axis=1).mean(axis=0)
        prediction[box] = mean.argmax(axis=0)
    np.save(out / "uncertainty.npy", uga)
    np.save(out / "prediction.npy", prediction)
    stages["combine"] = time.perf_counter() - combine_started
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "tiles": len(blocks), **_memory(sampler),
            "stages_s": {k: round(v, 2) for k, v in stages.items()}}


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


def _compared(ours: Path, peer: Path, slide_path: Path, mpp: float, tile: int,
              overlap: int) -> dict[str, float]:
    """Uncertainty of ours vs a peer over the tissue pixels of the predicted cores."""
    a = np.load(ours).astype(np.float32)
    b = np.load(peer)
    with open_slide(slide_path) as slide:
        tissue, layout, blocks = _blocks(slide, mpp, tile, overlap)
    where = np.zeros(layout.shape, bool)
    for block in blocks:
        box = np.s_[block.y:block.y + block.height, block.x:block.x + block.width]
        where[box] = layout.tissue_window(tissue, block)
    diff = np.abs(a[where] - b[where])
    return {"pixels": int(where.sum()), "ours_mean_u": round(float(a[where].mean()), 4),
            "peer_mean_u": round(float(b[where].mean()), 4),
            "mean_abs_diff": round(float(diff.mean()), 5),
            "max_abs_diff": round(float(diff.max()), 4),
            "correlation": round(float(np.corrcoef(a[where], b[where])[0, 1]), 5)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/pathloop-bench-ensemble"))
    parser.add_argument("--slide", type=Path, default=CMU_REGION)
    parser.add_argument("--tile-size", type=int, default=576, help="product default: 576")
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--peers", nargs="+", choices=PEER_VARIANTS, default=list(PEER_VARIANTS))
    parser.add_argument("--processes", type=int, default=1,
                        help="nnU-Net's preprocessing and export workers")
    parser.add_argument("--rounds", type=int, default=1, help="median of rounds")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, cfg_path = args.child
        cfg = json.loads(Path(cfg_path).read_text())
        figures = (_run_ours if kind == "ours" else _run_peer)(cfg)
        (Path(cfg["out"]) / "figures.json").write_text(json.dumps(figures))
        return

    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    model_dir, trained_now = _model(workdir)
    card = ModelCard.read(model_dir)
    base = {"slide": str(args.slide.resolve()), "model": str(model_dir), "mpp": card.mpp,
            "tile": args.tile_size, "overlap": args.overlap, "folds": list(card.folds),
            "processes": args.processes}
    peer_models = {v: str(_peer_model_folder(model_dir, workdir / f"peer-model-{v}",
                                             args.tile_size if v == "tile" else None))
                   for v in args.peers}
    load = os.getloadavg()[0]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in ["ours", *args.peers]}
    for number in range(args.rounds):
        for name in runs:
            print(f"round {number + 1}/{args.rounds}: {name}…", flush=True)
            cfg = {**base, "out": str(workdir / f"run-{name}"),
                   "peer_model": peer_models.get(name)}
            runs[name].append(_child("ours" if name == "ours" else "peer", cfg,
                                     workdir / f"{name}.log"))
    tiles = {run["tiles"] for results in runs.values() for run in results}
    if len(tiles) != 1:
        sys.exit(f"the paths predicted different numbers of tiles: {tiles}")
    n_tiles = tiles.pop()

    rows: dict[str, dict[str, Any]] = {}
    for name, results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        rows[name] = {
            "seconds": round(seconds, 2), "tiles_per_s": round(n_tiles / seconds, 3),
            "seconds_all_rounds": [round(r["seconds"], 2) for r in results],
            **{key: max(r[key] for r in results)
               for key in ("peak_rss_mib", "tree_peak_mib")},
        }
        if name != "ours":
            rows[name]["stages_s"] = results[-1]["stages_s"]
            rows[name]["ratio"] = round(seconds / rows["ours"]["seconds"], 2)
            # Each round's peer ran right after its ours: less exposed to other jobs' load.
            rows[name]["ratio_per_round"] = [round(r["seconds"] / o["seconds"], 2) for r, o
                                             in zip(results, runs["ours"], strict=True)]
            rows[name]["uncertainty_vs_ours"] = _compared(
                workdir / "run-ours" / "uncertainty.npy",
                workdir / f"run-{name}" / "uncertainty.npy",
                args.slide, card.mpp, args.tile_size, args.overlap)

    labels = {"ours": "ours (predict_slide)", "tile": "peer, patch = tile",
              "plans": f"peer, patch {card.patch_size[0]}² sliding"}
    print(f"\n{n_tiles} tissue tiles of {args.tile_size} px at {card.mpp} µm/px from "
          f"{args.slide.name}, {card.n_folds} folds (median of {args.rounds} round(s), "
          f"load average {load:.1f} at start)")
    print(f"{'path':>26} {'s':>7} {'tiles/s':>8} {'RSS MiB':>8} {'tree MiB':>9} "
          f"{'ratio':>6} {'per round':>16} {'|Δu| mean':>10}")
    for name, row in rows.items():
        ratio = row.get("ratio", 1.0)
        per_round = ",".join(str(r) for r in row.get("ratio_per_round", []))
        delta = row.get("uncertainty_vs_ours", {}).get("mean_abs_diff", "")
        print(f"{labels[name]:>26} {row['seconds']:>7} {row['tiles_per_s']:>8} "
              f"{row['peak_rss_mib']:>8} {row['tree_peak_mib']:>9} {ratio:>6} "
              f"{per_round:>16} {delta!s:>10}")

    summary = {
        "slide": args.slide.name, "mpp": card.mpp, "tile_size": args.tile_size,
        "overlap": args.overlap, "tiles": n_tiles, "rounds": args.rounds,
        "load_average_at_start": round(load, 2), "nnunet_processes": args.processes,
        "model": {"folds": card.n_folds, "patch_size": list(card.patch_size),
                  "schedule": {k: card.profile.get(k) for k in (
                      "name", "num_epochs", "iterations_per_epoch", "batch_size")},
                  "training_seconds": card.training_seconds,
                  "trained_now": trained_now},
        "ours": rows["ours"], "peers": {k: v for k, v in rows.items() if k != "ours"},
        "goals": {"ratio_at_least": GOAL_RATIO},
        "command": " ".join([".venv/bin/python", "bench/ensemble.py", *sys.argv[1:]]),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ensemble.json").write_text(json.dumps(summary, indent=2))
    print(f"→ {RESULTS / 'ensemble.json'}")


if __name__ == "__main__":
    main()
