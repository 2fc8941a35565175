"""Inspection benchmark: matching and scoring one image, beside all-pairs IoU matching.

Per image, an annotation and a prediction (``(H, W)`` int32 label arrays; model inference
excluded) are inspected the way :func:`pathloop.client.quality.inspect_image` does it — the
instances matched from one pass over the pixels (:func:`overlaps` + greedy IoU), states,
certainties and scores at α = γ = 0.5 — and, in the same run on the same labels, matched by
the straightforward peer :func:`match_instances_all_pairs`: each instance's boolean mask
(``labels == id``, cut to its box), then the IoU of every pair of instances from their masks
(a pair whose boxes do not meet is 0 without touching pixels), then the same greedy step.
The peer does no scoring, so the ratio (peer / ours) flatters the peer. The matches must be
identical. Goal: ≥ 20×.

Cases: a synthetic 1000×1000 image with about 500 nuclei (annotation) and a perturbed copy
(prediction: shifted 1–2 px, 30 % eroded, 5 % removed, 5 % spurious ones added); and, when
``/work/shared/data`` is there, a MoNuSeg test image's own annotation (ImageScope XML) with
a prediction perturbed the same way.

Run: ``.venv/bin/python bench/inspection.py``. Prints a table and writes
``bench/results/inspection.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from pathloop.client.quality import (
    inspect_image,
    match_instances,
    match_instances_all_pairs,
    simulate_noise,
)

RESULTS = Path(__file__).resolve().parent / "results"
MONUSEG_TEST = Path("/work/shared/data/nuclei/monuseg/test")
GOAL_RATIO = 20.0


def synthetic_annotation(size: int = 1000, n_target: int = 500, seed: int = 0
                         ) -> NDArray[np.int32]:
    """Non-overlapping ellipses (semi-axes 5–12 px), about ``n_target`` of them."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((size, size), np.int32)
    rows, cols = np.ogrid[:size, :size]
    placed = 0
    while placed < n_target:
        cy, cx = rng.integers(15, size - 15, 2)
        ry, rx = rng.integers(5, 13, 2)
        window = (slice(cy - 13, cy + 14), slice(cx - 13, cx + 14))
        shape = ((rows[window[0]] - cy) / ry) ** 2 + ((cols[:, window[1]] - cx) / rx) ** 2 <= 1
        if (labels[window][shape] == 0).all():
            placed += 1
            labels[window][shape] = placed
    return labels


def perturbed(annotation: NDArray[np.int32], seed: int = 1) -> NDArray[np.int32]:
    """A stand-in prediction: shifted, partly eroded, some removed, some spurious added."""
    shifted = np.roll(annotation, (1, 2), axis=(0, 1))
    eroded = simulate_noise(shifted, "undersized", 0.30, seed=seed).labels
    fewer = simulate_noise(eroded, "forgotten", 0.05, seed=seed + 1).labels
    return simulate_noise(fewer, "jitter", 0.05, seed=seed + 2).labels


def monuseg_case() -> tuple[str, NDArray[np.int32]] | None:
    """The first MoNuSeg test image's annotation as a label array, when the data is there."""
    if not MONUSEG_TEST.is_dir():
        return None
    from pathloop.client.annotations import read_annotations

    xml = sorted(MONUSEG_TEST.glob("*.xml"))[0]
    return xml.stem, read_annotations(xml, image_size=(1000, 1000)).to_labels((1000, 1000))


def _median_seconds(run: Callable[[], object], rounds: int) -> float:
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def measure(name: str, annotation: NDArray[np.int32], prediction: NDArray[np.int32],
            rounds: int) -> dict[str, object]:
    """Seconds per image of ours (matching; matching + scoring) and of the all-pairs peer."""
    ours, peer = match_instances(annotation, prediction), match_instances_all_pairs(
        annotation, prediction)
    inspection = inspect_image(name, annotation, prediction, alpha=0.5, gamma=0.5)
    match_s = _median_seconds(lambda: match_instances(annotation, prediction), rounds)
    inspect_s = _median_seconds(
        lambda: inspect_image(name, annotation, prediction, alpha=0.5, gamma=0.5), rounds)
    peer_s = _median_seconds(lambda: match_instances_all_pairs(annotation, prediction), rounds)
    return {
        "case": name, "shape": list(annotation.shape),
        "annotated": len(np.unique(annotation)) - 1,
        "predicted": len(np.unique(prediction)) - 1,
        "pairs": len(ours.pairs), "states": len(inspection.states),
        "same_matches": ours == peer,
        "ours_match_s": round(match_s, 5), "ours_match_and_score_s": round(inspect_s, 5),
        "all_pairs_match_s": round(peer_s, 4),
        "ratio": round(peer_s / inspect_s, 1), "ratio_matching_only": round(peer_s / match_s, 1),
        "rounds": rounds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    annotation = synthetic_annotation()
    cases = [("synthetic", annotation, perturbed(annotation))]
    real = monuseg_case()
    if real is not None:
        cases.append((f"monuseg {real[0]}", real[1], perturbed(real[1])))
    rows = [measure(name, a, p, args.rounds) for name, a, p in cases]

    print("\nper image (median of rounds): ours = one-pass overlaps + greedy (+ states and "
          "scores); peer = all-pairs boolean-mask IoU")
    print(f"{'case':>34} {'annot':>6} {'pred':>6} {'pairs':>6} {'same':>5} "
          f"{'match ms':>9} {'+score ms':>9} {'peer ms':>9} {'ratio':>7}")
    for row in rows:
        print(f"{row['case']!s:>34} {row['annotated']!s:>6} {row['predicted']!s:>6} "
              f"{row['pairs']!s:>6} {row['same_matches']!s:>5} "
              f"{float(str(row['ours_match_s'])) * 1000:>9.1f} "
              f"{float(str(row['ours_match_and_score_s'])) * 1000:>9.1f} "
              f"{float(str(row['all_pairs_match_s'])) * 1000:>9.0f} {row['ratio']!s:>6}×")
    min_ratio = min(float(str(row["ratio"])) for row in rows)
    same = all(row["same_matches"] for row in rows)
    summary = {"cases": rows, "goal_ratio_at_least": GOAL_RATIO, "min_ratio": min_ratio,
               "same_matches": same, "goal_met": same and min_ratio >= GOAL_RATIO}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "inspection.json").write_text(json.dumps(summary, indent=2))
    print(f"\nmin ratio {min_ratio}× (goal ≥ {GOAL_RATIO}×), same matches: {same} → "
          f"{'met' if summary['goal_met'] else 'MISSED'} → {RESULTS / 'inspection.json'}")


if __name__ == "__main__":
    main()
