"""The federated stage of ``pathloop demo``: the 3 sites learn together through Flower.

Two ways to run the same ServerApp logic and ClientApp handlers:

``simulation`` (the default)
    Flower's Simulation Runtime (:mod:`pathloop.client.federation.simulation`): one virtual
    SuperNode per site, Ray actors on this machine.
``loopback``
    A real deployment on this machine (:class:`~pathloop.server.loopback.LoopbackFederation`):
    a SuperLink with TLS and SuperNode authentication, one SuperNode per site, each running
    the site's ClientApp in its own processes, driven exactly as across hospitals.

Either way:

1. the baseline ensemble is exported as the federation's initial model and imported by every
   site; each site's config gets a ``[federation]`` table naming its own tiles (its first
   slide for training, its second held out) and its worklist refresh;
2. every site scores the initial model, then ``rounds`` FedAvg rounds go through;
3. each round every site fine-tunes on its tiles plus its pathologist's corrections (from
   the UGA stage), the server averages the updates into a new global version, and every site
   adopts it, scores it on its held-out tiles and refreshes its worklist.

The demo plays the central team too, which is why this edge module imports
``pathloop.server``; sites in a hospital never do.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PIL import Image

from pathloop.client.demo.sites import pairs, site_settings
from pathloop.client.demo.uga import MODEL_MPP, TASK, baseline_cases, slide_dice
from pathloop.client.errors import InputError
from pathloop.client.sample import SyntheticSlide
from pathloop.client.segmentation import Case, export_model
from pathloop.client.settings import SiteSettings
from pathloop.client.store import ModelVersionRecord, Store
from pathloop.client.usecases.models import import_model
from pathloop.server.errors import FederationError

COMPLETED = "finished:completed"
FEDERATION_MODES = ("simulation", "loopback")
"""How the demo can run its federated rounds (see the module docstring)."""


@dataclass(frozen=True)
class RoundDice:
    """Every site's held-out Dice of one global version."""

    version: int
    dice: dict[str, float]

    @property
    def mean(self) -> float:
        return sum(self.dice.values()) / len(self.dice) if self.dice else float("nan")


#: Federated rounds the demo runs by default, and each site's fine-tuning per round
#: (epochs of the tiny profile, learning rate); measured at seed 2, see docs/demo.md.
DEMO_ROUNDS = 2
ROUND_EPOCHS = 3
ROUND_LEARNING_RATE = 5e-3


def run_federated_rounds(workdir: Path, sites: dict[str, list[SyntheticSlide]],
                         baseline: ModelVersionRecord, *, rounds: int = DEMO_ROUNDS,
                         rerank_k: int = 5,
                         mode: str = "simulation", timeout: float = 3600.0,
                         local_epochs: int = ROUND_EPOCHS,
                         learning_rate: float = ROUND_LEARNING_RATE,
                         seed: int | None = None,
                         aggregation_rule: str = "mean") -> list[RoundDice]:
    """Run ``rounds`` federated rounds across the demo's sites; the federation's own Dice
    (each site's held-out tiles) per global version.

    ``mode`` is ``simulation`` (Flower's Simulation Runtime) or ``loopback`` (a SuperLink
    and one SuperNode per site on this machine, TLS and SuperNode authentication on).
    ``seed`` seeds every site's fine-tuning (each site its own draw, see
    :func:`~pathloop.client.usecases.rounds.round_seed`), so a seed's rounds repeat.
    ``aggregation_rule`` is the server's (``mean``, ``trimmed-mean`` or ``median``, see
    :mod:`pathloop.server.aggregation`).
    """
    from pathloop.server.report import summarize

    if mode not in FEDERATION_MODES:
        raise InputError(f"federation mode {mode!r}: one of {', '.join(FEDERATION_MODES)}")
    root = workdir / "federation"
    shutil.rmtree(root, ignore_errors=True)
    assert baseline.weights_uri is not None
    initial = export_model(baseline.weights_uri, root / "initial")
    configs = {site_id: _federated_site(workdir, site_id, slides, initial, rerank_k,
                                        None if seed is None else (seed * 100 + number) % 2**20)
               for number, (site_id, slides) in enumerate(sites.items())}
    run_config = {"checkpoint-dir": str(root / "checkpoints"), "initial-model": str(initial),
                  "num-server-rounds": rounds, "min-train-nodes": len(configs),
                  "min-available-nodes": len(configs), "local-epochs": local_epochs,
                  "learning-rate": learning_rate, "aggregation-rule": aggregation_rule,
                  "round-timeout": timeout / rounds}
    if mode == "simulation":
        names = _simulate(list(configs.values()), run_config)
    else:
        names = _loopback(root, configs, run_config, timeout)
    summary = summarize(root / "checkpoints", names)
    made = len(summary.versions) - 1
    if made < rounds:
        raise FederationError(f"only {made} of {rounds} federated rounds produced a global "
                              "version: no site update was valid (the server's warnings "
                              "above name each site's error)")
    return [RoundDice(version, dict(sorted(dice.items())))
            for version, dice in sorted(summary.dice.items())]


@dataclass(frozen=True)
class GlobalScores:
    """The global versions after round 1, 2, … scored like the rest of the demo: tumour
    Dice on each site's held-out slide (:func:`~pathloop.client.demo.uga.slide_dice`), and
    each round's wall time (training, aggregation, evaluation and worklist refresh)."""

    dice: dict[int, dict[str, float]]
    round_seconds: dict[int, float]


def score_global_versions(workdir: Path, sites: dict[str, list[SyntheticSlide]]
                          ) -> GlobalScores:
    """Score every global version the rounds made on each site's held-out slide.

    Each site adopted the versions during the rounds; their records are found by the
    weights' digest, so a site scores exactly the weights the server saved.

    Raises
    ------
    FederationError
        A site did not adopt a version the server saved.
    """
    from pathloop.client.usecases.models import MODEL_KIND
    from pathloop.client.usecases.rounds import global_version_name
    from pathloop.server.checkpoints import CheckpointStore

    checkpoints = CheckpointStore(workdir / "federation" / "checkpoints")
    versions = checkpoints.versions()
    created = {v.version: datetime.fromisoformat(v.created) for v in versions}
    dice: dict[int, dict[str, float]] = {}
    for version in (v.version for v in versions if v.version > 0):
        name = global_version_name(version, checkpoints.load(version))
        dice[version] = {}
        for site_id, slides in sites.items():
            settings = site_settings(workdir, site_id)
            with Store.open(settings) as store:
                record = store.latest_model_version(MODEL_KIND, name)
                if record is None:
                    raise FederationError(f"{site_id} did not adopt global version {version}")
                held_out = pairs(store, slides)[1]
                dice[version][site_id] = slide_dice(settings, store, record, *held_out)
    seconds = {v: round((created[v] - created[v - 1]).total_seconds(), 1)
               for v in created if v - 1 in created}
    return GlobalScores(dice, seconds)


def _simulate(configs: list[Path], run_config: dict[str, object]) -> dict[int, str]:
    from pathloop.client.federation.simulation import run_simulated_federation
    from pathloop.server.settings import ServerSettings

    # Every site trains at once, each on its share of the cores (Ray then gives each one
    # torch thread). With a whole CPU each, Ray ran two sites at a time and one core idled
    # while the third trained (rounds of 120 s, 108 s, 108 s against 108 s, 92 s, 94 s).
    share = math.floor(100 * (os.cpu_count() or 1) / len(configs)) / 100
    result = run_simulated_federation(configs, ServerSettings.from_run_config(run_config),
                                      cpus_per_site=max(share, 0.01), show_site_logs=False)
    return result.site_names


def _loopback(root: Path, configs: dict[str, Path], run_config: dict[str, object],
              timeout: float) -> dict[int, str]:
    from pathloop.server.flower_project import write_flower_app
    from pathloop.server.loopback import LoopbackFederation, threads_per_node

    with LoopbackFederation(root / "central") as federation:
        federation.start_superlink()
        for site_id, config in configs.items():
            federation.register(site_id)
            federation.start_supernode(site_id, config, threads_per_node(len(configs)))
        federation.wait_online(len(configs))
        run = federation.cli.start_run(write_flower_app(root / "app"), run_config)
        status = federation.cli.wait(run, timeout)
        if status != COMPLETED:
            raise FederationError(f"federated run {run} ended {status}; logs in "
                                  f"{federation.logs}")
        return federation.layout.site_names()


def _federated_site(workdir: Path, site_id: str, slides: list[SyntheticSlide],
                    initial: Path, rerank_k: int, seed: int | None) -> Path:
    """Write the site's tiles and its config with a ``[federation]`` table; import the
    initial model. Returns the config file the site's SuperNode reads."""
    settings = site_settings(workdir, site_id)
    folder = settings.data_dir / "federation-data"
    shutil.rmtree(folder, ignore_errors=True)
    with Store.open(settings) as store:
        samples = pairs(store, slides)
        train = _write_tiles(baseline_cases(settings, store, samples[:1]), folder / "train")
        held = _write_tiles(baseline_cases(settings, store, samples[1:2]),
                            folder / "held-out")
        import_model(settings, store, initial, "federation-initial")
    config = settings.data_dir / "pathloop.toml"
    fields = {"training-images": train / "images", "training-masks": train / "masks",
              "held-out-images": held / "images", "held-out-masks": held / "masks"}
    lines = [f"site-id = {json.dumps(site_id)}",
             f"data-dir = {json.dumps(str(settings.data_dir))}",
             f"slide-roots = {json.dumps([str(p) for p in settings.slide_roots])}",
             "", "[federation]",
             *(f"{key} = {json.dumps(str(path))}" for key, path in fields.items()),
             f"mpp = {MODEL_MPP}", f"labels = {json.dumps(list(TASK.label_names))}",
             'profile = "tiny"', f"rerank-k = {rerank_k}",
             *([] if seed is None else [f"seed = {seed}"])]
    config.write_text("\n".join(lines) + "\n")
    SiteSettings.from_file(config)  # the SuperNode will read it: fail here, not there
    return config


def _write_tiles(cases: Iterable[Case], folder: Path) -> Path:
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for case in cases:
        Image.fromarray(case.image).save(folder / "images" / f"{case.name}.png")
        Image.fromarray(case.mask).save(folder / "masks" / f"{case.name}.png")
    return folder


__all__ = ["DEMO_ROUNDS", "FEDERATION_MODES", "GlobalScores", "RoundDice", "run_federated_rounds",
           "score_global_versions"]
