"""The ``pathloop`` command.

Settings are built here, once, from ``--config`` (or ``$PATHLOOP_CONFIG``, or
``./pathloop.toml`` when present) and passed down. A :class:`PathloopError` is printed as one
line on stderr with exit code 1; anything else is a bug and keeps its traceback. Heavy
imports live inside the commands so ``pathloop --help`` stays fast.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from pathloop.client.errors import ConfigError, PathloopError
from pathloop.client.settings import SiteSettings
from pathloop.server.cli import app as server_app
from pathloop.server.errors import FederationError

if TYPE_CHECKING:
    from rich.progress import Progress

    from pathloop.client.store import Store

app = typer.Typer(help="pathloop: federated human-in-the-loop pathology, the site node.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
slides_app = typer.Typer(help="Add, list and inspect slides.", no_args_is_help=True)
app.add_typer(slides_app, name="slides")
app.add_typer(server_app, name="server")

# Wide enough for the tables when the output goes to a file or a pipe.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120)
errors = Console(stderr=True)


def _print_error(error: PathloopError | FederationError) -> None:
    """One plain line on stderr, never wrapped or coloured (scripts parse it)."""
    message = " ".join(str(error).split())
    typer.echo(f"error: {message}", err=True)


class _State:
    settings: SiteSettings | None = None
    config: Path | None = None


_state = _State()


@app.callback()
def _main(
    config: Path | None = typer.Option(None, "--config", "-c", envvar="PATHLOOP_CONFIG",
                                       help="Site config file (TOML)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens."),
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    _state.config = config


def _settings() -> SiteSettings:
    if _state.settings is None:
        path = _state.config
        if path is None and Path("pathloop.toml").is_file():
            path = Path("pathloop.toml")
        _state.settings = SiteSettings.from_file(path) if path else SiteSettings()
    return _state.settings


@contextmanager
def _store(settings: SiteSettings) -> Iterator[Store]:
    from pathloop.client.store import Store

    store = Store.open(settings)
    try:
        yield store
    finally:
        store.close()


@slides_app.command("add")
def slides_add(
    paths: list[Path] = typer.Argument(..., help="Slide files to add."),
    site: str | None = typer.Option(None, "--site", "-s", help="Site id (default: config)."),
    mpp: float | None = typer.Option(None, "--mpp", help="µm/px for slides that record none."),
) -> None:
    """Validate slides and record them in the site's store."""
    from pathloop.client.usecases.slides import ingest_slide

    settings = _settings()
    failed = 0
    with _store(settings) as store:
        for path in paths:
            try:
                result = ingest_slide(settings, store, path, site_id=site, mpp=mpp)
            except PathloopError as error:
                _print_error(error)
                failed += 1
                continue
            verb = "added" if result.created else "already present"
            console.print(f"{verb}: slide {result.slide.id} {result.slide.name} "
                          f"({result.slide.width}×{result.slide.height}, "
                          f"{result.slide.mpp_x:.3f} µm/px, site {result.slide.site_id})",
                          highlight=False)
    if failed:
        raise typer.Exit(1)


@slides_app.command("list")
def slides_list(site: str | None = typer.Option(None, "--site", "-s")) -> None:
    """List the slides in the store."""
    settings = _settings()
    with _store(settings) as store:
        records = store.list_slides(site)
    table = Table("id", "site", "name", "size", "µm/px", "vendor", "hash")
    for s in records:
        table.add_row(str(s.id), s.site_id, s.name, f"{s.width}×{s.height}",
                      f"{s.mpp_x:.3f}", s.vendor or "", s.content_hash[:12])
    console.print(table)
    console.print(f"{len(records)} slide(s)")


@slides_app.command("info")
def slides_info(
    path: Path = typer.Argument(..., help="A slide file inside the slide roots."),
    mpp: float | None = typer.Option(None, "--mpp", help="µm/px for slides that record none."),
) -> None:
    """Show a slide file's metadata (nothing is stored)."""
    from pathloop.client.usecases.slides import describe_slide

    meta = describe_slide(_settings(), path, mpp=mpp)
    table = Table("field", "value", show_header=False)
    for key, value in meta.summary().items():
        table.add_row(key, str(value))
    console.print(table)


@app.command("tile")
def tile(
    slide: str = typer.Argument(..., help="Slide id, content-hash prefix or path."),
    mpp: float | None = typer.Option(None, "--mpp", help="Tile resolution in µm/px."),
    tile_size: int | None = typer.Option(None, "--tile-size", help="Tile edge in pixels."),
    stride: int | None = typer.Option(None, "--stride", help="Step in pixels (default: size)."),
) -> None:
    """Detect tissue and record the slide's tissue tiles."""
    from pathloop.client.usecases.slides import find_slide, tile_slide

    settings = _settings()
    overrides = {k: v for k, v in
                 {"mpp": mpp, "tile_size": tile_size, "stride": stride}.items() if v is not None}
    params = settings.tiling.model_copy(update=overrides)
    with _store(settings) as store, _progress() as progress:
        record = find_slide(store, slide)
        task = progress.add_task(f"tiling {record.name}", total=None)
        result = tile_slide(settings, store, record, tiling=params,
                            progress=lambda done, total: progress.update(
                                task, completed=done, total=total))
    console.print(
        f"slide {record.id} {record.name}: {result.kept} tissue tiles of "
        f"{params.tile_size}px at {params.mpp} µm/px kept "
        f"({result.candidates} on tissue, {result.dropped_background} dropped as >"
        f"{params.max_background_fraction:.0%} black/white, {result.grid_tiles} in the grid; "
        f"tissue {result.tissue_fraction:.0%} of the slide) in {result.seconds:.1f} s",
        highlight=False)


@app.command("annotate")
def annotate(
    slide: str = typer.Argument(..., help="Slide id, content-hash prefix or path."),
    mask: Path = typer.Argument(..., help="Label image (8-bit PNG/TIFF) inside the slide roots."),
    mpp: float = typer.Option(..., "--mpp", help="The label image's µm/px."),
) -> None:
    """Import an earlier annotation of a slide (shown in the viewer; "keep annotation")."""
    from pathloop.client.usecases.review import import_annotation
    from pathloop.client.usecases.slides import find_slide

    settings = _settings()
    with _store(settings) as store:
        record = find_slide(store, slide)
        raster = import_annotation(settings, store, record, mask, mpp=mpp)
    console.print(f"slide {record.id} {record.name}: annotation {raster.shape[1]}×"
                  f"{raster.shape[0]} px at {mpp} µm/px stored (version {raster.version})",
                  highlight=False)


model_app = typer.Typer(help="Train and inspect fold ensembles.", no_args_is_help=True)
app.add_typer(model_app, name="model")


@model_app.command("train")
def model_train(
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
    device: str = typer.Option("cpu", "--device"),
) -> None:
    """Train a 5-fold ensemble on tiles (and corrections); record it as a model version."""
    from pathloop.client.segmentation import SegmentationTask, get_profile
    from pathloop.client.usecases.models import correction_cases, folder_cases, train_model

    settings = _settings()
    with _store(settings) as store:
        parent_version = store.get_model_version(parent) if parent is not None else None
        task = SegmentationTask("custom", {n: i for i, n in enumerate(labels.split(","))})
        if parent_version is not None:
            mpp = mpp or float(parent_version.provenance["mpp"])
        if mpp is None:
            raise ConfigError("--mpp is needed: the resolution of the training tiles")
        cases = list(folder_cases(images, masks)) if images and masks else []
        used = store.latest_corrections(settings.site_id) if corrections else []
        cases += list(correction_cases(settings, store, used))
        console.print(f"training {name!r} on {len(cases)} tiles "
                      f"({len(used)} corrections) with the {profile} profile …")
        version = train_model(settings, store, cases, task=task, mpp=mpp,
                              profile=get_profile(profile), name=name, parent=parent_version,
                              corrections=used, device=device)
    console.print(f"model version {version.id} {version.name} at {version.weights_uri}",
                  highlight=False)


@model_app.command("export")
def model_export(
    version: int = typer.Argument(..., help="Model version id."),
    out: Path = typer.Argument(..., help="New folder for the shipped model."),
) -> None:
    """Export a model version as a federation's initial model (no training logs)."""
    from pathloop.client.segmentation import export_model

    with _store(_settings()) as store:
        record = store.get_model_version(version)
        if not record.weights_uri:
            raise ConfigError(f"model version {version} has no weights")
        target = export_model(record.weights_uri, out)
    console.print(f"exported model version {version} to {target} (arrays.npz for the "
                  "aggregation server)", highlight=False)


@model_app.command("import")
def model_import(
    folder: Path = typer.Argument(..., help="A shipped model folder."),
    name: str = typer.Option("initial", "--name", help="Name of the local model version."),
) -> None:
    """Take a shipped model folder (the federation's initial model) as the current model."""
    from pathloop.client.usecases.models import import_model

    settings = _settings()
    with _store(settings) as store:
        record = import_model(settings, store, folder, name)
    console.print(f"model version {record.id} {record.name} at {record.weights_uri}",
                  highlight=False)


site_app = typer.Typer(help="Take part in a federation: this site's SuperNode.",
                       no_args_is_help=True)
app.add_typer(site_app, name="site")


@site_app.command("key")
def site_key(
    folder: Path = typer.Argument(..., help="Folder for the key pair (keep it private)."),
    name: str = typer.Option(..., "--name", help="The key's name, e.g. this site's id."),
) -> None:
    """Make this site's SuperNode key pair; send only the .pub file to the central team."""
    from pathloop.server.credentials import make_node_key

    key = make_node_key(folder, name)
    console.print(f"private key (never leaves this site): {key.private}\n"
                  f"public key (send to the central team): {key.public}", highlight=False)


@site_app.command("join")
def site_join(
    superlink: str = typer.Option(..., "--superlink", help="The SuperLink's HOST:PORT."),
    ca: Path = typer.Option(..., "--ca", help="The federation's CA certificate (ca.crt)."),
    key: Path = typer.Option(..., "--key", help="This site's SuperNode private key."),
    port: int = typer.Option(9094, "--port", help="The SuperNode's local Runtime API port."),
) -> None:
    """Run this site's SuperNode in the foreground (the site config from --config)."""
    import os

    from pathloop.server.deployment import process_environment, supernode_command

    config = _state.config or (Path("pathloop.toml") if Path("pathloop.toml").is_file()
                               else None)
    if config is None:
        raise ConfigError("site join needs the site's config file: pathloop --config FILE "
                          "site join …")
    settings = _settings()
    if settings.federation.training_images is None:
        raise ConfigError(f"{config}: [federation] names no training-images (see "
                          "docs/federation.md)")
    command = supernode_command(config, superlink, ca, key, port)
    console.print(f"site {settings.site_id}: SuperNode to {superlink}", highlight=False)
    os.execve(command[0], command, process_environment())


@app.command("predict")
def predict(
    slide: str = typer.Argument(..., help="Slide id, content-hash prefix or path."),
    model: int = typer.Option(..., "--model", help="Model version id."),
    device: str = typer.Option("cpu", "--device"),
) -> None:
    """Every fold over the slide's tissue: prediction and uncertainty rasters."""
    from pathloop.client.usecases.loop import predict_stored_slide
    from pathloop.client.usecases.models import load_ensemble
    from pathloop.client.usecases.slides import find_slide

    settings = _settings()
    with _store(settings) as store, _progress() as progress:
        record = find_slide(store, slide)
        version = store.get_model_version(model)
        ensemble = load_ensemble(version, device)
        task = progress.add_task(f"predicting {record.name}", total=None)
        result = predict_stored_slide(settings, store, record, ensemble, version,
                                      progress=lambda d, t: progress.update(
                                          task, completed=d, total=t))
    console.print(f"slide {record.id}: {result.n_tiles} tiles, {result.shape[1]}×"
                  f"{result.shape[0]} px maps at {result.mpp} µm/px in {result.seconds:.1f} s "
                  f"({', '.join(str(k) for k in result.rasters)})", highlight=False)


@app.command("rank")
def rank(
    slides: list[str] = typer.Argument(..., help="Predicted slides (id, hash or path)."),
    k: int = typer.Option(5, "--k", min=1, help="Patches per slide for the worklist."),
    strategy: str = typer.Option("uga", "--strategy", help="uga or random (the baseline)."),
    patch_size: int = typer.Option(1024, "--patch-size", help="Patch edge in pixels."),
    patch_mpp: float = typer.Option(1.0, "--patch-mpp", help="Patch resolution in µm/px."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Rank predicted slides' patches by uncertainty and fill the worklist."""
    from pathloop.client.ranking import PatchSpec
    from pathloop.client.usecases.loop import rank_stored_slide
    from pathloop.client.usecases.slides import find_slide

    settings = _settings()
    spec = PatchSpec(size=patch_size, mpp=patch_mpp)
    table = Table("slide", "rank", "x", "y", "size", "mean u", "sum u")
    with _store(settings) as store:
        for reference in slides:
            record = find_slide(store, reference)
            ranked = rank_stored_slide(settings, store, record, spec=spec, k=k,
                                       strategy=strategy, seed=seed)
            for patch in store.ranked_patches(ranked.ranking.id):
                table.add_row(record.name, str(patch.rank), str(patch.x), str(patch.y),
                              f"{patch.width}", f"{patch.score_mean:.4f}",
                              f"{patch.score_sum:.1f}")
    console.print(table)


@app.command("demo")
def demo(
    workdir: Path = typer.Option(Path("pathloop-demo"), "--workdir",
                                 help="Folder for the demo's sample slides and site stores."),
    sites: int = typer.Option(3, "--sites", min=1, max=3, help="Simulated sites."),
    slides_per_site: int = typer.Option(2, "--slides-per-site", min=1, max=10),
    size: int = typer.Option(4096, "--size", min=1024, max=65536,
                             help="Edge of each sample slide in pixels."),
    loop: bool = typer.Option(True, "--loop/--no-loop",
                              help="Run the UGA loop (train, rank, correct, retrain)."),
    rounds: int = typer.Option(2, "--rounds", min=0, max=20,
                               help="Federated rounds after the loop (0: none)."),
    federation: str = typer.Option("simulation", "--federation",
                                   help="simulation (Flower's Simulation Runtime) or loopback "
                                        "(SuperLink + SuperNodes on this machine, TLS)."),
    serve_viewer: bool = typer.Option(True, "--serve/--no-serve",
                                      help="End by serving a site's viewer until Ctrl+C."),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="The viewer's port."),
) -> None:
    """Run the whole site loop on sample slides made for the demo, then serve its viewer."""
    from pathloop.client.demo import run_demo, viewer_settings

    with _progress() as progress:
        task = progress.add_task("demo", total=None)

        def report(message: str, done: int, total: int) -> None:
            progress.update(task, description=message, completed=done, total=total)

        summary = run_demo(workdir, n_sites=sites, slides_per_site=slides_per_site,
                           size=size, loop=loop, rounds=rounds, federation=federation,
                           progress=report)
    table = Table("site", "slide", "size", "µm/px", "tissue", "tiles kept", "dropped", "seconds",
                  title="pathloop demo: sample slides ingested and tiled")
    for row in summary.rows:
        table.add_row(row.site_id, row.slide_name, f"{row.width}×{row.height}",
                      f"{row.mpp:.2f}", f"{row.tissue_fraction:.0%}", str(row.kept),
                      str(row.dropped_background), f"{row.seconds:.1f}")
    console.print(table)
    for line in summary.lines():
        console.print(line, highlight=False)
    if serve_viewer:
        from pathloop.client.api import TokenStore
        from pathloop.client.api.serving import serve, viewer_url

        settings = viewer_settings(summary)
        token = TokenStore.for_data_dir(settings.data_dir).add("demo-pathologist")
        console.print(f"Viewer of site {settings.site_id} (Ctrl+C stops it): "
                      f"{viewer_url(settings, token, port=port)}", highlight=False, soft_wrap=True)
        serve(settings, port=port)


api_app = typer.Typer(help="Users of the site service and their tokens.", no_args_is_help=True)
app.add_typer(api_app, name="api")


@api_app.command("token")
def api_token(
    action: str = typer.Argument(..., help="add, list or revoke"),
    user: str | None = typer.Argument(None, help="User name (add, revoke)."),
) -> None:
    """Make a token for a user (printed once), list users, or revoke a user's tokens."""
    from pathloop.client.api import TokenStore
    from pathloop.client.errors import InputError

    tokens = TokenStore.for_data_dir(_settings().data_dir)
    if action == "list":
        for name in tokens.users():
            typer.echo(name)
    elif action in ("add", "revoke") and user:
        if action == "add":
            typer.echo(tokens.add(user))
        else:
            typer.echo(f"revoked {tokens.revoke(user)} token(s) of {user}", err=True)
    else:
        raise InputError("usage: pathloop api token add NAME | list | revoke NAME")


@app.command("serve")
def serve(
    host: str | None = typer.Option(None, "--host", help="Address to bind ([api] host)."),
    port: int | None = typer.Option(None, "--port", min=1, max=65535, help="[api] port."),
) -> None:
    """Run the site service: the API and the viewer, until interrupted."""
    from pathloop.client.api.serving import first_token, serve, viewer_url

    settings = _settings()
    token = first_token(settings)
    typer.echo(f"pathloop site {settings.site_id}: open {viewer_url(settings, token, port=port)}")
    if token is None and settings.api.require_token:
        typer.echo("(make a token with `pathloop api token add NAME` and add #token=… to the "
                   "address)")
    serve(settings, host=host, port=port)


eval_app = typer.Typer(help="Reproduce the papers' experiments on real annotated data.",
                       no_args_is_help=True)
app.add_typer(eval_app, name="eval")


@eval_app.command("uga")
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
    from pathloop.client.experiments.uga_eval import RETRAIN_PROFILE
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
    with _progress() as progress:
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


@contextmanager
def _progress() -> Iterator[Progress]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=errors, transient=True) as progress:
        yield progress


def main() -> None:
    """Entry point: run the app, turning pathloop errors into one line and exit 1."""
    try:
        app()
    except (PathloopError, FederationError) as error:
        _print_error(error)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
