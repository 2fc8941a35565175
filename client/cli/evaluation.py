"""``pathloop eval uga``: the papers' experiments on real annotated data."""

from __future__ import annotations

from pathlib import Path

import typer

from pathloop.client.cli.context import console, progress_bar
from pathloop.client.errors import ConfigError

app = typer.Typer(help="Reproduce the papers' experiments on real annotated data.",
                  no_args_is_help=True)


@app.command("uga")
def eval_uga(
    monuseg: Path = typer.Option(..., "--monuseg", help="MoNuSeg folder (train/ and test/)."),
    workdir: Path = typer.Option(Path("pathloop-eval-uga"), "--workdir",
                                 help="New folder for the experiment's store, models, report."),
    baseline: str = typer.Option("breast,kidney", "--baseline", help="Baseline organs."),
    centres: str = typer.Option("lung,prostate", "--centres", help="Target organs."),
    pool: int = typer.Option(4, "--pool", min=1, help="Pool images per target centre."),
    ks: str = typer.Option("5,10", "--ks", help="Patch counts to add."),
    seeds: str = typer.Option("0", "--random-seeds", help="Seeds of the random baseline."),
    retrain_epochs: int = typer.Option(10, "--retrain-epochs", min=1),
    quick: bool = typer.Option(False, "--quick",
                               help="2 folds, a few iterations: checks the pipeline only."),
    device: str = typer.Option("cpu", "--device"),
) -> None:
    """The UGA paper's experiment on MoNuSeg: baseline, +k UGA and +k random patches."""
    from pathloop.client.experiments import UgaEvalConfig, run_uga_eval, write_report
    from pathloop.client.experiments.uga_records import RETRAIN_PROFILE
    from pathloop.client.segmentation import TINY

    base_profile = TINY
    retrain = RETRAIN_PROFILE.with_overrides(num_epochs=retrain_epochs)
    if quick:
        short = {"n_folds": 2, "iterations_per_epoch": 5, "val_iterations_per_epoch": 1}
        base_profile = TINY.with_overrides(num_epochs=2, **short)
        retrain = retrain.with_overrides(num_epochs=1, **short)
    config = UgaEvalConfig(
        baseline_centres=_names(baseline), target_centres=_names(centres), n_pool=pool,
        ks=tuple(_integers(ks, "--ks")), random_seeds=tuple(_integers(seeds, "--random-seeds")),
        baseline_profile=base_profile, retrain_profile=retrain)
    with progress_bar() as progress:
        task = progress.add_task("eval uga", total=None)
        result = run_uga_eval(monuseg, workdir, config, device=device,
                              progress=lambda message, done, total: progress.update(
                                  task, description=message, completed=done, total=total))
    report, plot = write_report(result, workdir)
    console.print(report.read_text().split("![")[0].rstrip(), highlight=False)
    console.print(f"report: {report}\nplot: {plot}", highlight=False)


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _integers(text: str, option: str) -> list[int]:
    try:
        return [int(part) for part in _names(text)]
    except ValueError:
        raise ConfigError(f"{option}: comma-separated integers, got {text!r}") from None
