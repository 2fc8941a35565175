"""Training benchmark: the 5 folds of the tiny profile one after another (one process, torch
on every thread) beside side by side (one single-thread process per thread).

Both train the same dataset (256² MoNuSeg tiles at 0.5 µm/px, read in place from
``../shared/data``, as in ``bench/ensemble.py``) with the same seeded profile, so the weights
are the same bit for bit when the thread counts match (``tests/segmentation/
test_fold_processes.py``). The two are timed in alternation, ``--rounds`` times each, in
this process (the fold processes' start-up, about 5 s, counted). Reported: median wall time
of each and the ratio sequential / side by side (above 1: side by side is faster). Run it on
an otherwise idle machine; on a VM the figures move with the host's load, which the
alternation spreads over both.

Run: ``.venv/bin/python bench/training.py``. Prints a table and writes
``bench/results/training.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from ensemble import MODEL_MPP, MONUSEG, _monuseg_cases  # bench/ensemble.py

from pathloop.client.segmentation import TINY, SegmentationTask, export_dataset, train_ensemble

RESULTS = Path(__file__).resolve().parent / "results"


def _train(dataset: Path, workers: int, epochs: int) -> float:
    profile = TINY.with_overrides(num_epochs=epochs, seed=7)
    with tempfile.TemporaryDirectory(prefix="pathloop-bench-training-") as folder:
        started = time.perf_counter()
        train_ensemble(dataset, Path(folder) / "model", profile=profile, workers=workers)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="epochs of 30 iterations")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=5, help="MoNuSeg images (4 tiles each)")
    args = parser.parse_args()
    if not MONUSEG.is_dir():
        sys.exit(f"error: {MONUSEG} missing (../shared/data beside the repository)")
    threads = torch.get_num_threads()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="pathloop-bench-training-") as folder:
        task = SegmentationTask("nuclei", {"background": 0, "nucleus": 1},
                                rgb_normalization="rgb_to_0_1")
        dataset = export_dataset(_monuseg_cases(args.images), Path(folder) / "dataset", task,
                                 mpp=MODEL_MPP).path
        seconds: dict[str, list[float]] = {"sequential": [], "side_by_side": []}
        for number in range(args.rounds):
            for name, workers in (("sequential", 1), ("side_by_side", threads)):
                print(f"round {number + 1}/{args.rounds}: {name}…", flush=True)
                seconds[name].append(round(_train(dataset, workers, args.epochs), 2))
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    ratio = round(medians["sequential"] / medians["side_by_side"], 3)
    print(f"\n5 folds × {args.epochs} epochs × 30 iterations, tiny profile, {threads} threads "
          f"(median of {args.rounds}, load average {load:.1f} at start)")
    for name, values in seconds.items():
        print(f"{name:>13}: {medians[name]:7.1f} s   {values}")
    print(f"{'ratio':>13}: {ratio} (sequential / side by side)")
    summary = {"epochs": args.epochs, "rounds": args.rounds, "threads": threads,
               "cases": 4 * args.images, "load_average_at_start": round(load, 2),
               "seconds": seconds, "median_seconds": medians,
               "sequential_over_side_by_side": ratio,
               "command": " ".join([".venv/bin/python", "bench/training.py", *sys.argv[1:]])}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "training.json").write_text(json.dumps(summary, indent=2))
    print(f"→ {RESULTS / 'training.json'}")


if __name__ == "__main__":
    main()
