"""``pathloop model train|export|import``: the site's fold ensembles."""

from __future__ import annotations

from pathlib import Path

import typer

from pathloop.client.cli.context import console, open_store, site_settings
from pathloop.client.cli.logs import site_command_log
from pathloop.client.errors import ConfigError

app = typer.Typer(help="Train and inspect fold ensembles.", no_args_is_help=True)


@app.command("train")
def model_train(
    ctx: typer.Context,
    name: str = typer.Option(..., "--name", help="Name of the new model version."),
    images: Path | None = typer.Option(None, "--images", help="Folder of RGB tiles."),
    masks: Path | None = typer.Option(None, "--masks",
                                      help="Folder of label masks named like the tiles."),
    mpp: float | None = typer.Option(None, "--mpp", help="µm/px of the tiles."),
    labels: str = typer.Option("background,foreground", "--labels",
                               help="Label names, value 0 first."),
    parent: int | None = typer.Option(None, "--parent",
                                      help="Model version to continue from."),
    corrections: bool = typer.Option(False, "--corrections",
                                     help="Add this site's corrected patches."),
    profile: str = typer.Option("tiny", "--profile", help="tiny (CPU) or nnunet (GPU)."),
    epochs: int | None = typer.Option(None, "--epochs", min=1,
                                      help="Epochs per fold (default: the profile's)."),
    device: str = typer.Option("cpu", "--device"),
) -> None:
    """Train a 5-fold ensemble on tiles (and corrections); record it as a model version.

    With ``--parent`` the folds continue from the parent's (as many folds as it has).
    """
    from pathloop.client.segmentation import ModelCard, SegmentationTask, get_profile
    from pathloop.client.usecases.models import correction_cases, folder_cases, train_model

    settings = site_settings(ctx)
    with site_command_log(ctx, "model-train"), open_store(settings) as store:
        parent_version = store.get_model_version(parent) if parent is not None else None
        task = SegmentationTask("custom", {n: i for i, n in enumerate(labels.split(","))})
        chosen = get_profile(profile)
        if epochs is not None:
            chosen = chosen.with_overrides(num_epochs=epochs)
        if parent_version is not None:
            if not parent_version.weights_uri:
                raise ConfigError(f"model version {parent} has no weights to continue from")
            card = ModelCard.read(parent_version.weights_uri)
            mpp = mpp or card.mpp
            task = card.task
            chosen = chosen.with_overrides(n_folds=card.n_folds)
        if mpp is None:
            raise ConfigError("--mpp is needed: the resolution of the training tiles")
        cases = list(folder_cases(images, masks)) if images and masks else []
        used = store.latest_corrections(settings.site_id) if corrections else []
        cases += list(correction_cases(settings, store, used))
        console.print(f"training {name!r} on {len(cases)} tiles "
                      f"({len(used)} corrections) with the {profile} profile, "
                      f"{chosen.n_folds} folds …")
        version = train_model(settings, store, cases, task=task, mpp=mpp,
                              profile=chosen, name=name, parent=parent_version,
                              corrections=used, device=device)
    console.print(f"model version {version.id} {version.name} at {version.weights_uri}",
                  highlight=False)


@app.command("export")
def model_export(
    ctx: typer.Context,
    version: int = typer.Argument(..., help="Model version id."),
    out: Path = typer.Argument(..., help="New folder for the shipped model."),
) -> None:
    """Export a model version as a federation's initial model (no training logs)."""
    from pathloop.client.segmentation import export_model

    with open_store(site_settings(ctx)) as store:
        record = store.get_model_version(version)
        if not record.weights_uri:
            raise ConfigError(f"model version {version} has no weights")
        target = export_model(record.weights_uri, out)
    console.print(f"exported model version {version} to {target} (arrays.npz for the "
                  "aggregation server)", highlight=False)


@app.command("import")
def model_import(
    ctx: typer.Context,
    folder: Path = typer.Argument(..., help="A shipped model folder."),
    name: str = typer.Option("initial", "--name", help="Name of the local model version."),
) -> None:
    """Take a shipped model folder (the federation's initial model) as the current model."""
    from pathloop.client.usecases.models import import_model

    settings = site_settings(ctx)
    with open_store(settings) as store:
        record = import_model(settings, store, folder, name)
    console.print(f"model version {record.id} {record.name} at {record.weights_uri}",
                  highlight=False)
