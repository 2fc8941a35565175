"""nnU-Net's trainer with the few things pathloop adds: a schedule, start weights, hue.

:class:`PathloopTrainer` is ``nnUNetTrainer`` with the same ``__init__`` signature (nnU-Net
records the arguments by name and rebuilds trainers from them). Everything else is set as
attributes after construction and before :meth:`run_training`:

- ``num_epochs``, ``num_iterations_per_epoch``, ``num_val_iterations_per_epoch``,
  ``initial_lr`` (nnU-Net's own attributes);
- ``initial_weights``: a state dict loaded strictly into the network after it is built,
  to fine-tune or retrain a fold from its previous weights;
- ``hue_shift``: adds :class:`HueRotationTransform` to the training augmentation;
- ``plot_every``: nnU-Net redraws ``progress.png`` after every epoch, a 3000×5400 px
  figure (≈1 s with matplotlib, a third of a tiny epoch); here a 720×800 px figure of the
  same curves (:func:`draw_progress`), every ``plot_every`` epochs and at the end unless
  just drawn. A training shorter than ``plot_every`` epochs (a federated round, a
  retraining on corrections) draws none: a few points make no curve, and at ~0.5 s a plot
  cost as much as a tenth of such a fold; ``training_log.txt`` has every epoch's figures;
- ``proximal_mu``: FedProx's term ``μ/2 · ‖w − w⁰‖²`` added to the training loss, ``w⁰``
  the weights the fold started from (the global model of a federated round);
- ``should_stop``: asked before every training and validation iteration; once it answers
  true the training raises :class:`~pathloop.client.errors.Cancelled` (nnU-Net has no stop
  of its own: its loop runs every epoch's iterations), after shutting down the data
  loaders' workers. An iteration lasts well under a second with the tiny profile and about
  a second with nnU-Net's on a GPU, so a stop takes effect within seconds.

nnU-Net's data loader limits the thread pools to one thread around every batch it builds
with ``threadpoolctl.threadpool_limits``, which finds the loaded libraries anew each time
by scanning the process's memory map: 4 ms a batch, 5% of a tiny training step. The
trainer points that name at a limiter with the libraries found once
(:func:`_cached_threadpool_limits`); the limits it sets and restores are the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import nnunetv2.training.dataloading.data_loader as nnunet_data_loader
import torch
from batchgeneratorsv2.transforms.utils.random import RandomTransform
from nnunetv2.training.logging.nnunet_logger import MetaLogger
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from threadpoolctl import ThreadpoolController

from pathloop.client.errors import Cancelled
from pathloop.client.segmentation.augmentation import HueRotationTransform

HUE_PROBABILITY = 0.5


_controller: ThreadpoolController | None = None


def _cached_threadpool_limits(limits: int | None = None, user_api: str | None = None) -> Any:
    """``threadpoolctl.threadpool_limits`` over the libraries found at its first call."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=limits, user_api=user_api)


class _SparsePlotLogger(MetaLogger):
    """nnU-Net's logger, drawing a compact progress plot only every ``every`` calls."""

    def __init__(self, output_folder: str, every: int) -> None:
        super().__init__(output_folder, False)
        self.every = max(1, every)
        self.calls = 0
        self.drawn_at = 0  # calls when the plot was last drawn

    def plot_progress_png(self, output_folder: str) -> None:
        self.calls += 1
        if self.calls % self.every == 0:
            self.plot_now(output_folder)

    def plot_now(self, output_folder: str) -> None:
        draw_progress(self.local_logger.my_fantastic_logging, Path(output_folder) / "progress.png")
        self.drawn_at = self.calls

    def plot_last(self, output_folder: str) -> None:
        """The final plot: drawn unless the last epoch's is, or fewer than ``every`` epochs
        ran (see the module docstring)."""
        if self.calls >= self.every and self.drawn_at != self.calls:
            self.plot_now(output_folder)


def draw_progress(logged: Mapping[str, Sequence[float]], path: Path) -> None:
    """nnU-Net's three progress panels (losses and pseudo-Dice, epoch time, learning rate)
    from its logger's lists, at 720×800 px and without touching pyplot's global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = min(len(values) for values in logged.values())
    x = list(range(epochs))
    figure = Figure(figsize=(9, 10), dpi=80, layout="tight")
    FigureCanvasAgg(figure)
    top, middle, bottom = figure.subplots(3, 1)
    top.plot(x, logged["train_losses"][:epochs], "b-", label="loss_tr")
    top.plot(x, logged["val_losses"][:epochs], "r-", label="loss_val")
    top.set(xlabel="epoch", ylabel="loss")
    dice = top.twinx()
    dice.plot(x, logged["mean_fg_dice"][:epochs], "g:", label="pseudo dice")
    dice.plot(x, logged["ema_fg_dice"][:epochs], "g-", label="pseudo dice (mov. avg.)")
    dice.set(ylabel="pseudo dice")
    top.legend(loc="upper left", fontsize="small")
    dice.legend(loc="upper right", fontsize="small")
    durations = [end - start for start, end in zip(logged["epoch_start_timestamps"][:epochs],
                                                   logged["epoch_end_timestamps"][:epochs],
                                                   strict=True)]
    middle.plot(x, durations, "b-", label="epoch duration")
    middle.set(xlabel="epoch", ylabel="time [s]", ylim=(0, max(durations, default=1) * 1.1))
    middle.legend(loc="upper left", fontsize="small")
    bottom.plot(x, logged["lrs"][:epochs], "b-", label="learning rate")
    bottom.set(xlabel="epoch", ylabel="learning rate")
    bottom.legend(loc="upper right", fontsize="small")
    figure.savefig(path)


class ProximalLoss(torch.nn.Module):
    """A loss plus FedProx's ``μ/2 · ‖w − w⁰‖²`` while the network trains.

    ``w⁰`` is a copy of the network's parameters when this loss is built; in evaluation
    mode (nnU-Net's validation steps) the plain loss is returned.
    """

    def __init__(self, loss: torch.nn.Module, network: torch.nn.Module, mu: float) -> None:
        super().__init__()
        self.loss, self.network, self.mu = loss, network, float(mu)
        self.reference = [p.detach().clone() for p in network.parameters()]

    def forward(self, output: Any, target: Any) -> torch.Tensor:
        """The wrapped loss, plus the proximal term in training mode."""
        value: torch.Tensor = self.loss(output, target)
        if not self.network.training or self.mu == 0:
            return value
        proximal = sum(torch.sum((p - r) ** 2)
                       for p, r in zip(self.network.parameters(), self.reference, strict=True))
        return value + (self.mu / 2) * proximal


class PathloopTrainer(nnUNetTrainer):
    """``nnUNetTrainer`` plus start weights, hue augmentation and sparse progress plots."""

    def __init__(self, plans: dict[str, Any], configuration: str, fold: int,
                 dataset_json: dict[str, Any],
                 device: torch.device = torch.device("cuda")) -> None:
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.initial_weights: Mapping[str, torch.Tensor] | None = None
        self.hue_shift = 0.0
        self.proximal_mu = 0.0
        self.plot_every = 10
        self.should_stop: Callable[[], bool] | None = None
        self.logger = _SparsePlotLogger(self.output_folder, self.plot_every)

    def initialize(self) -> None:
        """Build network, optimiser and loss; then load :attr:`initial_weights` if given.

        Raises
        ------
        RuntimeError
            From ``load_state_dict`` when the weights do not fit the planned network.
        """
        nnunet_data_loader.threadpool_limits = _cached_threadpool_limits
        super().initialize()
        self.logger.every = max(1, self.plot_every)
        if self.initial_weights is not None:
            self.network.load_state_dict(dict(self.initial_weights), strict=True)
        if self.proximal_mu > 0:
            self.loss = ProximalLoss(self.loss, self.network, self.proximal_mu)  # type: ignore[has-type]

    def get_training_transforms(self, *args: Any, **kwargs: Any) -> Any:
        """nnU-Net's training augmentation, plus a hue rotation when ``hue_shift > 0``."""
        transforms = super().get_training_transforms(*args, **kwargs)
        if self.hue_shift > 0 and self.num_input_channels is not None \
                and self.num_input_channels >= 3:
            hue = RandomTransform(HueRotationTransform(self.hue_shift),
                                  apply_probability=HUE_PROBABILITY)
            # After the spatial transform (index 0), with the other intensity transforms.
            transforms.transforms.insert(1, hue)
            self.print_to_log_file(f"pathloop: hue rotation up to ±{self.hue_shift} turns "
                                   f"on {HUE_PROBABILITY:.0%} of the training patches")
        return transforms

    def train_step(self, batch: dict[str, Any]) -> dict[str, Any]:
        """nnU-Net's training step, after asking :attr:`should_stop`."""
        self._stop_if_asked()
        result: dict[str, Any] = super().train_step(batch)
        return result

    def validation_step(self, batch: dict[str, Any]) -> dict[str, Any]:
        """nnU-Net's validation step, after asking :attr:`should_stop`."""
        self._stop_if_asked()
        result: dict[str, Any] = super().validation_step(batch)
        return result

    def run_training(self) -> None:
        """nnU-Net's training loop; if it stops early (a stop, an error), the data loaders'
        workers are shut down as at its normal end, and nothing is saved."""
        try:
            super().run_training()
        except BaseException:
            self._finish_data_loaders()
            raise

    def _stop_if_asked(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise Cancelled(f"training of fold {self.fold} stopped on request at epoch "
                            f"{self.current_epoch}")

    def _finish_data_loaders(self) -> None:
        for loader in (self.dataloader_train, self.dataloader_val):
            finish = getattr(loader, "_finish", None)  # the multi-process augmenters'
            if finish is not None:
                finish()

    def on_train_end(self) -> None:
        """nnU-Net's end of training, plus the final progress plot."""
        super().on_train_end()
        if isinstance(self.logger, _SparsePlotLogger):
            self.logger.plot_last(self.output_folder)


__all__ = ["HUE_PROBABILITY", "PathloopTrainer", "ProximalLoss", "draw_progress"]
