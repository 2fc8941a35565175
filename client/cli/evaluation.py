"""``pathloop eval uga`` and ``pathloop eval ai2seg``: the papers' experiments on real
annotated data."""

from __future__ import annotations

from pathlib import Path

import typer

from pathloop.client.cli.context import cli_state, console, progress_bar
from pathloop.client.cli.logs import command_log
from pathloop.client.errors import ConfigError
from pathloop.client.experiments.ai2seg_records import AI2SEG_PROFILE, BETAS, MODEL_MPP
from pathloop.client.experiments.uga_records import RETRAIN_PROFILE, UgaEvalConfig
from pathloop.client.quality.noise import NOISE_TYPES

DEFAULTS = UgaEvalConfig()

app = typer.Typer(help="Reproduce the papers' experiments on real annotated data.",
                  no_args_is_help=True)


@app.command("uga")
def eval_uga(
    ctx: typer.Context,
    monuseg: Path = typer.Option(..., "--monuseg", help="MoNuSeg folder (train/ and test/)."),
    workdir: Path = typer.Option(Path("pathloop-eval-uga"), "--workdir",
                                 help="New folder for the experiment's store, models, report."),
    baseline: str = typer.Option(",".join(DEFAULTS.baseline_centres), "--baseline",
                                 help="Baseline organs."),
    centres: str = typer.Option(",".join(DEFAULTS.target_centres), "--centres",
                                help="Target organs (new centres)."),
    pool: int = typer.Option(DEFAULTS.n_pool, "--pool", min=1,
                             help="Pool images per target centre."),
    ks: str = typer.Option(",".join(map(str, DEFAULTS.ks)), "--ks", help="Patch counts to add."),
    draws: str = typer.Option(",".join(map(str, DEFAULTS.draws)), "--draws",
                              help="Draws: random patches and both arms' training seeded by "
                                   "each."),
    retrain_epochs: int = typer.Option(RETRAIN_PROFILE.num_epochs or 5, "--retrain-epochs",
                                       min=1),
    quick: bool = typer.Option(False, "--quick",
                               help="2 folds, a few iterations: checks the pipeline only."),
    device: str = typer.Option("cpu", "--device"),
    verbose: bool = typer.Option(False, "--verbose", "-v",
                                 help="Libraries' log lines on the terminal too."),
) -> None:
    """The UGA paper's experiment on MoNuSeg: baseline, +k UGA and +k random patches, repeated
    over draws (about half an hour on 2 cores with the defaults)."""
    from pathloop.client.experiments import UgaEvalConfig, run_uga_eval, write_report
    from pathloop.client.segmentation import TINY

    base_profile = TINY.with_overrides(seed=0)
    retrain = RETRAIN_PROFILE.with_overrides(num_epochs=retrain_epochs)
    if quick:
        short = {"n_folds": 2, "iterations_per_epoch": 5, "val_iterations_per_epoch": 1}
        base_profile = TINY.with_overrides(num_epochs=2, **short)
        retrain = retrain.with_overrides(num_epochs=1, **short)
    config = UgaEvalConfig(
        baseline_centres=_names(baseline), target_centres=_names(centres), n_pool=pool,
        ks=tuple(_integers(ks, "--ks")), draws=tuple(_integers(draws, "--draws")),
        baseline_profile=base_profile, retrain_profile=retrain)
    verbose = verbose or cli_state(ctx).verbose
    with command_log(workdir, "eval-uga", verbose=verbose), progress_bar() as progress:
        task = progress.add_task("eval uga", total=None)
        result = run_uga_eval(monuseg, workdir, config, device=device,
                              progress=lambda message, done, total: progress.update(
                                  task, description=message, completed=done, total=total))
    report, plot = write_report(result, workdir)
    console.print(report.read_text().split("![")[0].rstrip(), highlight=False)
    console.print(f"report: {report}\nplot: {plot}", highlight=False)


@app.command("ai2seg")
def eval_ai2seg(
    ctx: typer.Context,
    monuseg: Path = typer.Option(..., "--monuseg", help="MoNuSeg folder (train/ and test/)."),
    workdir: Path = typer.Option(Path("pathloop-eval-ai2seg"), "--workdir",
                                 help="New folder for the models and the report."),
    types: str = typer.Option(",".join(NOISE_TYPES), "--types", help="Noise types."),
    betas: str = typer.Option(",".join(f"{b:.2f}" for b in BETAS), "--betas",
                              help="Fractions of instances made noisy."),
    seeds: str = typer.Option("0", "--seeds",
                              help="Seeds: noise and training seeded by each; averaged."),
    epochs: int = typer.Option(AI2SEG_PROFILE.num_epochs or 12, "--epochs", min=1,
                               help="Training epochs of the instance model (30 iterations)."),
    folds: int = typer.Option(1, "--folds", min=1,
                              help="Folds of the instance model (1: an 80/20 split)."),
    model_mpp: float = typer.Option(MODEL_MPP, "--model-mpp",
                                    help="µm/px the instance model works at (0.25: MoNuSeg's "
                                         "own, about 5× slower to predict)."),
    boundary_width: int = typer.Option(1, "--boundary-width", min=1,
                                       help="Boundary ring of the targets, px at "
                                            "--model-mpp."),
    quick: bool = typer.Option(False, "--quick",
                               help="2 images, the first type, β 0.25, a few iterations: "
                                    "checks the pipeline only."),
    device: str = typer.Option("cpu", "--device"),
    verbose: bool = typer.Option(False, "--verbose", "-v",
                                 help="Libraries' log lines on the terminal too."),
) -> None:
    """AI²Seg's Table I on MoNuSeg: simulated annotation noise per type and β, the instance
    model trained on the noisy crops, its inspection's ROC-AUC against the noise (about two
    minutes per cell on 2 cores, 27 cells with the defaults)."""
    from pathloop.client.experiments.ai2seg import run_ai2seg_eval
    from pathloop.client.experiments.ai2seg_records import Ai2SegConfig
    from pathloop.client.experiments.ai2seg_report import rows, summary, write_report

    profile = AI2SEG_PROFILE.with_overrides(num_epochs=epochs)
    kinds, fractions = _names(types), tuple(_fractions(betas))
    max_images = None
    if quick:
        profile = AI2SEG_PROFILE.with_overrides(num_epochs=1, iterations_per_epoch=3,
                                                val_iterations_per_epoch=1)
        kinds, fractions, max_images = kinds[:1], (0.25,), 2
    config = Ai2SegConfig(types=kinds, betas=fractions,
                          seeds=tuple(_integers(seeds, "--seeds")), profile=profile,
                          n_folds=folds, max_images=max_images, model_mpp=model_mpp,
                          boundary_width=boundary_width)
    verbose = verbose or cli_state(ctx).verbose
    with command_log(workdir, "eval-ai2seg", verbose=verbose), progress_bar() as progress:
        task = progress.add_task("eval ai2seg", total=None)
        result = run_ai2seg_eval(monuseg, workdir, config, device=device,
                                 progress=lambda message, done, total: progress.update(
                                     task, description=message, completed=done, total=total))
    report, plots = write_report(result, workdir)
    console.print(report.read_text().split("## Wall time")[0].rstrip(), highlight=False)
    facts = summary(rows(result))
    console.print(f"AUC* >= paper in {facts['n_at_least_paper']} of {facts['n_compared']} "
                  f"cells\nreport: {report}\nplots: {len(plots)} in {workdir}",
                  highlight=False)


def _fractions(text: str) -> list[float]:
    try:
        return [float(part) for part in _names(text)]
    except ValueError:
        raise ConfigError(f"--betas: comma-separated numbers, got {text!r}") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _integers(text: str, option: str) -> list[int]:
    try:
        return [int(part) for part in _names(text)]
    except ValueError:
        raise ConfigError(f"{option}: comma-separated integers, got {text!r}") from None
