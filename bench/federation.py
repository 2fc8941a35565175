"""Federation benchmark: our message path and aggregation beside a plain numpy weighted mean.

The arrays: 5 members of nnU-Net's default 2D architecture for 256×256 RGB patches
(``PlainConvUNet``, 7 stages, 32…512 features, 2 convolutions per stage, 2 classes — what
nnU-Net's planner gives such a dataset; 64 M parameters once the decoder's alias of the
encoder is left out, as sites send them), named ``fold<k>/<parameter>``, float32; 10 site
updates, each the global model plus small seeded noise. All 10 are held at once, as
Flower hands the server a round's replies together: about 13 GB of messages.

ours
    What a round costs: each update packed into one float32 vector per member and
    serialised into a Flower ArrayRecord (the site's side; the wire contract's
    ``PackingLayout``), then deserialised, validated (names, shapes, dtypes, finite, change
    bound), weighed (capped counts), clipped and averaged member-wise with the aggregation
    defences' defaults, the aggregate checked (finite, change bound), the result unpacked
    into per-parameter arrays for the checkpoint — what the strategy does
    (:mod:`pathloop.server`).
peer-inplace (the like-for-like peer)
    The same weighted mean over the same updates held as numpy arrays, accumulated in place
    as ours does (one float32 running sum per array, ``sum += w_i · u_i``, divided in place
    at the end): no messages, no validation.
peer (naive)
    ``sum(w_i · u_i) / Σ w_i`` per array name with Python's ``sum``, which builds a new
    array at every step; shown beside, never judged.

Each path runs in a fresh process (peak RSS is its ``VmHWM``; the updates are generated
before the timer starts in all). The goal is judged like for like on the server's work,
from the round's messages to the new global arrays, against the in-place peer, which also
starts from arrays in memory: server / peer-inplace ≤ 1.5 (``goal_met`` in the JSON). The
sites' serialisation (each site packs one message, on its own machine) is reported beside
it, as are ours / naive peer, ours' parts (serialisation, deserialisation, validation,
aggregation), peak RSS and bytes per message. Run:
``.venv/bin/python bench/federation.py``; writes ``bench/results/federation.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from process_memory import peak_rss_mib

RESULTS = Path(__file__).resolve().parent / "results"
N_MEMBERS = 5
N_UPDATES = 10
GOAL_RATIO = 1.5


def default_2d_shapes() -> dict[str, tuple[int, ...]]:
    """Parameter shapes of nnU-Net's default 2D network for 256² RGB patches, 2 classes."""
    import torch
    from dynamic_network_architectures.architectures.unet import PlainConvUNet

    network = PlainConvUNet(
        3, 7, (32, 64, 128, 256, 512, 512, 512), torch.nn.Conv2d, 3,
        ((1, 1), (2, 2), (2, 2), (2, 2), (2, 2), (2, 2), (2, 2)), (2,) * 7, 2, (2,) * 6,
        conv_bias=True, norm_op=torch.nn.InstanceNorm2d,
        norm_op_kwargs={"eps": 1e-5, "affine": True}, nonlin=torch.nn.LeakyReLU,
        nonlin_kwargs={"inplace": True})
    # As sites send them: without the decoder's alias of the encoder (see
    # pathloop.client.segmentation.weights).
    return {name: tuple(t.shape) for name, t in network.state_dict().items()
            if not name.startswith("decoder.encoder.")}


def _arrays(shapes: dict[str, tuple[int, ...]], seed: int,
            base: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    if base is None:
        return {f"fold{k}/{name}": (rng.standard_normal(shape, np.float32) * np.float32(0.05))
                for k in range(N_MEMBERS) for name, shape in shapes.items()}
    return {name: value + rng.standard_normal(value.shape, np.float32) * np.float32(1e-3)
            for name, value in base.items()}


def _child(path: str, shapes_file: Path) -> dict[str, Any]:
    shapes = {k: tuple(v) for k, v in json.loads(shapes_file.read_text()).items()}
    base = _arrays(shapes, 0)
    weights = [float(10 + 7 * i) for i in range(N_UPDATES)]
    if path in ("peer", "peer-inplace"):
        updates = [_arrays(shapes, i + 1, base) for i in range(N_UPDATES)]
        started = time.perf_counter()
        total = sum(weights)
        if path == "peer":
            mean = {name: sum(w * u[name] for w, u in zip(weights, updates, strict=True))
                    / total for name in base}
        else:
            mean = {name: np.zeros_like(array) for name, array in base.items()}
            for w, update in zip(weights, updates, strict=True):
                for name, running in mean.items():
                    running += update[name] * np.float32(w)
            for running in mean.values():
                running /= np.float32(total)
        seconds = time.perf_counter() - started
        checksum = float(sum(float(a.sum()) for a in mean.values()))
        return {"seconds": seconds, "peak_rss_mib": peak_rss_mib(), "checksum": checksum}

    from pathloop.server.aggregation import Defences, aggregate, capped_weights, clip_scale
    from pathloop.server.contract import PackingLayout
    from pathloop.server.strategy import to_numpy, to_record
    from pathloop.server.validation import UpdateValidator, check_aggregate

    layout = PackingLayout.of(base)
    records, serialise = [], 0.0
    for i in range(N_UPDATES):  # the sites' side: each update becomes a message's record
        update = _arrays(shapes, i + 1, base)
        started = time.perf_counter()
        records.append(to_record(layout.pack(update)))
        serialise += time.perf_counter() - started
        del update
    packed_base = layout.pack(base)  # the global model as the round's messages carry it
    message_bytes = sum(len(a.data) for a in records[0].values())
    message_arrays = len(records[0])
    parts = {"deserialise": 0.0, "validate": 0.0, "aggregate": 0.0}
    defences = Defences()  # the run config's defaults, as the strategy applies them
    started_all = time.perf_counter()
    validator = UpdateValidator(packed_base)
    updates, changes = [], []
    for record in records:
        t0 = time.perf_counter()
        update = to_numpy(record)  # views of the message's buffers
        t1 = time.perf_counter()
        changes.append(validator.check(update))
        t2 = time.perf_counter()
        parts["deserialise"] += t1 - t0
        parts["validate"] += t2 - t1
        updates.append(update)
    t2 = time.perf_counter()
    capped = capped_weights(weights, max_examples=defences.max_examples,
                            max_ratio=defences.max_examples_ratio)
    scales = [{fold: clip_scale(value, defences.clip_relative_change)
               for fold, value in change.items()} for change in changes]
    aggregated = aggregate(packed_base, updates, capped, scales)
    t3 = time.perf_counter()
    check_aggregate(aggregated, validator)
    t4 = time.perf_counter()
    parts["aggregate"] += t3 - t2
    parts["validate"] += t4 - t3
    del updates
    result = layout.unpack(aggregated)
    server = time.perf_counter() - started_all
    checksum = float(sum(float(a.sum()) for a in result.values()))
    return {"seconds": serialise + server, "server_seconds": server,
            "serialise": serialise, **parts, "peak_rss_mib": peak_rss_mib(),
            "message_bytes": message_bytes, "message_arrays": message_arrays,
            "checksum": checksum}


def _run(path: str, shapes_file: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", path, str(shapes_file)],
                         check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per path")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child[0], Path(args.child[1]))))
        return
    RESULTS.mkdir(exist_ok=True)
    shapes = default_2d_shapes()
    shapes_file = RESULTS / "federation-shapes.json"
    shapes_file.write_text(json.dumps(shapes))
    n_params = sum(int(np.prod(s)) for s in shapes.values())
    print(f"nnU-Net default 2D network: {n_params / 1e6:.1f} M parameters per member, "
          f"{N_MEMBERS} members, {N_UPDATES} site updates")
    paths = ("ours", "peer-inplace", "peer")
    runs: dict[str, list[dict[str, Any]]] = {path: [] for path in paths}
    for round_ in range(args.rounds):
        for path in paths if round_ % 2 == 0 else paths[::-1]:
            print(f"round {round_ + 1}/{args.rounds}: {path}…", flush=True)
            runs[path].append(_run(path, shapes_file))
    medians = {path: {k: statistics.median(r[k] for r in results) for k in results[0]}
               for path, results in runs.items()}
    ours, peer, naive = medians["ours"], medians["peer-inplace"], medians["peer"]
    ratio = ours["seconds"] / peer["seconds"]
    server_ratio = ours["server_seconds"] / peer["seconds"]
    naive_ratio = ours["seconds"] / naive["seconds"]
    agreement = abs(ours["checksum"] - peer["checksum"]) / max(abs(peer["checksum"]), 1e-12)
    print(f"\n{'path':>34} {'seconds':>8} {'peak MiB':>9} {'ratio':>6}")
    print(f"{'peer-inplace: numpy, in place':>34} {peer['seconds']:8.2f} "
          f"{peer['peak_rss_mib']:9.0f} {1.0:6.2f}")
    print(f"{'peer: numpy with sum() (naive)':>34} {naive['seconds']:8.2f} "
          f"{naive['peak_rss_mib']:9.0f} {naive['seconds'] / peer['seconds']:6.2f}")
    print(f"{'ours: serialise + server':>34} {ours['seconds']:8.2f} "
          f"{ours['peak_rss_mib']:9.0f} {ratio:6.2f}")
    print(f"{'ours: server (from records)':>34} {ours['server_seconds']:8.2f} {'':>9} "
          f"{server_ratio:6.2f}")
    print("parts (s): " + ", ".join(f"{k} {ours[k]:.2f}" for k in
                                    ("serialise", "deserialise", "validate", "aggregate")))
    goal_met = server_ratio <= GOAL_RATIO
    print(f"bytes per message: {ours['message_bytes'] / 2**20:.1f} MiB in "
          f"{ours['message_arrays']:.0f} arrays; results agree to "
          f"{agreement:.1e} (relative, checksum); server / peer-inplace {server_ratio:.2f}, "
          f"goal ≤ {GOAL_RATIO}: {'met' if goal_met else 'MISSED'}")
    out = RESULTS / "federation.json"
    out.write_text(json.dumps({
        "members": N_MEMBERS, "updates": N_UPDATES, "parameters_per_member": n_params,
        "ours": ours, "peer_inplace": peer, "peer_naive": naive, "ratio": ratio,
        "server_ratio": server_ratio, "ratio_over_naive_peer": naive_ratio,
        "goal_ratio": GOAL_RATIO, "goal_met": goal_met, "runs": runs}, indent=1))
    print(f"→ {out}")


if __name__ == "__main__":
    main()
