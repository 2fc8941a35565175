"""``pathloop eval uga``: the papers' experiments on real annotated data."""

from __future__ import annotations

from pathlib import Path

import typer

from pathloop.client.cli.context import cli_state, console, progress_bar
from pathloop.client.cli.logs import command_log
from pathloop.client.errors import ConfigError
from pathloop.client.experiments.uga_records import RETRAIN_PROFILE, UgaEvalConfig

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


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _integers(text: str, option: str) -> list[int]:
    try:
        return [int(part) for part in _names(text)]
    except ValueError:
        raise ConfigError(f"{option}: comma-separated integers, got {text!r}") from None
