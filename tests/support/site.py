"""A real site for the API and browser tests: a slide, its maps, a worklist, a running service.

:func:`make_site` ingests and tiles a slide into a new store, predicts it with the numpy
fold ensemble (:class:`~support.folds.ThresholdFolds`: the folds disagree near tissue edges),
ranks its patches by UGA uncertainty, and stores an "annotation" raster (another threshold)
for keep-annotation. :func:`app_server` runs the site service with uvicorn in a thread on a
free 127.0.0.1 port; :func:`serving` runs ``pathloop serve`` in its own process.
"""

from __future__ import annotations

import os
import pty
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

from pathloop.client.api import TokenStore, create_app
from pathloop.client.ranking import PatchSpec
from pathloop.client.settings import ApiSettings, FederationSettings, SiteSettings
from pathloop.client.store import Store
from pathloop.client.usecases.loop import rank_stored_slide
from pathloop.client.usecases.models import MODEL_KIND
from pathloop.client.usecases.slides import ingest_slide, open_stored_slide, tile_slide
from support.folds import ThresholdFolds

MODEL_MPP = 2.0
PATCH = 128  # px at MODEL_MPP
LABELS = ("background", "tumour")
USER = "dr-test"
START_TIMEOUT = 60.0
"""Seconds `pathloop serve` may take to answer its health check."""


def make_site(tmp_path: Path, slide_path: Path, *, k: int = 5, viewer_dir: Path | None = None,
              role: str = "operator") -> tuple[SiteSettings, str]:
    """A site store with ``slide_path`` ingested, tiled, predicted and ranked; a token of
    :data:`USER` with ``role`` (default operator: the API tests also run jobs)."""
    from pathloop.client.inference import predict_slide
    from pathloop.client.tiling import compute_tissue_mask

    settings = SiteSettings(site_id="test-site", data_dir=tmp_path / "site",
                            slide_roots=(slide_path.parent,),
                            federation=FederationSettings(labels=LABELS),
                            api=ApiSettings(viewer_dir=viewer_dir))
    with Store.open(settings) as store:
        slide = ingest_slide(settings, store, slide_path).slide
        tile_slide(settings, store, slide)
        version = store.add_model_version(name="fake-ensemble", kind=MODEL_KIND)
        ensemble = ThresholdFolds(n_folds=5, n_classes=2, mpp=MODEL_MPP, radius=2,
                                  spread=0.08, thresholds=(0.3,))
        with open_stored_slide(settings, slide) as opened:
            tissue = compute_tissue_mask(opened, mpp=settings.tiling.thumbnail_mpp)
            prediction = predict_slide(opened, tissue, ensemble, store.rasters, slide.id,
                                       model_version_id=version.id)
        labels = np.asarray(store.rasters.open_raster(prediction.prediction).read(0))
        # An "earlier annotation": the prediction shifted by a few pixels, like a sloppy hand.
        store.rasters.save(np.roll(labels, (6, 6), axis=(0, 1)), slide.id, "annotation",
                           mpp=MODEL_MPP, downsample="mode")
        rank_stored_slide(settings, store, slide, spec=PatchSpec(size=PATCH, mpp=MODEL_MPP),
                          k=k)
    token = TokenStore.for_data_dir(settings.data_dir).add(USER, role)
    return settings, token


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def app_server(settings: SiteSettings) -> Iterator[str]:
    """Run the site service on a free 127.0.0.1 port in a thread; yield its base URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                            log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="site-service", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the site service did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def serving(config: Path, *, tty: bool = False
             ) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    """``pathloop serve`` on a free port until the block ends; its URL, console log and
    process. With ``tty`` its output goes to a pseudo-terminal (as when an admin runs it in a
    shell) and is copied to the log; else to the log file (as under systemd)."""
    port = free_port()
    log = config.parent / "serve.log"
    command = [sys.executable, "-m", "pathloop.client", "--config", str(config), "serve",
               "--port", str(port)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    copier = None
    if tty:
        primary, secondary = pty.openpty()
        process = subprocess.Popen(command, stdin=secondary, stdout=secondary,
                                   stderr=secondary, env=env)
        os.close(secondary)
        copier = threading.Thread(target=_copy_terminal, args=(primary, log), daemon=True)
        copier.start()
    else:
        with log.open("w") as console:
            process = subprocess.Popen(command, stdout=console, stderr=subprocess.STDOUT,
                                       env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, f"serve exited: {log.read_text()}"
            assert time.monotonic() < deadline, f"serve did not start: {log.read_text()}"
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield url, log, process
    finally:
        process.terminate()
        process.wait(timeout=30)
        if copier is not None:
            copier.join(timeout=10)


def _copy_terminal(primary: int, log: Path) -> None:
    """Copy what a process writes to its terminal into ``log`` until the terminal closes."""
    with log.open("wb") as copy:
        while True:
            try:
                data = os.read(primary, 4096)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not data:
                break
            copy.write(data)
            copy.flush()
    os.close(primary)
