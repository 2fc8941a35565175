"""PathloopTrainer's small additions to nnU-Net's trainer: the cached thread-pool limiter
and the sparse progress plot."""

from __future__ import annotations

from pathlib import Path

import pytest
from threadpoolctl import threadpool_info

from pathloop.client.segmentation.trainer import _cached_threadpool_limits, _SparsePlotLogger


def _threads() -> dict[str, int]:
    return {pool["filepath"]: pool["num_threads"] for pool in threadpool_info()}


def test_the_cached_limiter_limits_every_pool_and_restores_them() -> None:
    before = _threads()
    assert before  # torch's OpenMP at least
    for _ in range(2):  # the second call reuses the libraries the first one found
        with _cached_threadpool_limits(limits=1, user_api=None):
            assert set(_threads().values()) == {1}
        assert _threads() == before


def _epoch(logger: _SparsePlotLogger, epoch: int) -> None:
    for key, value in (("train_losses", 1.0), ("val_losses", 1.0), ("mean_fg_dice", 0.5),
                       ("ema_fg_dice", 0.5), ("lrs", 0.01),
                       ("epoch_start_timestamps", float(epoch)),
                       ("epoch_end_timestamps", epoch + 0.5)):
        logger.log(key, value, epoch)


@pytest.mark.parametrize(("epochs", "drawn"), [(3, False), (10, True), (12, True)])
def test_a_progress_plot_is_drawn_for_trainings_of_plot_every_epochs_or_more(
        tmp_path: Path, epochs: int, drawn: bool) -> None:
    logger = _SparsePlotLogger(str(tmp_path), every=10)
    for epoch in range(epochs):
        _epoch(logger, epoch)
        logger.plot_progress_png(str(tmp_path))
    plot = tmp_path / "progress.png"
    assert plot.exists() == (epochs >= 10)
    stamp = plot.stat().st_mtime_ns if drawn else None
    logger.plot_last(str(tmp_path))
    assert plot.exists() == drawn
    if epochs == 10:  # drawn at epoch 10 already: not drawn again
        assert plot.stat().st_mtime_ns == stamp
    elif drawn:  # epochs 11 and 12 were not on the plot yet
        assert plot.stat().st_mtime_ns > stamp
