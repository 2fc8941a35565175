"""The process-wide state nnU-Net reads, set for one job and restored afterwards.

nnU-Net takes its folders and a few switches from environment variables
(``nnunetv2.paths`` reads ``nnUNet_raw`` & co. each time they are used) and talks on
stdout. Nothing else in pathloop reads or sets these variables: the adapter wraps every call
into nnU-Net in :func:`nnunet_environment` and, for training, :func:`captured_output`.

Both touch process-wide state (``os.environ``, ``sys.stdout``): run one nnU-Net job per
process at a time.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

#: Every variable nnU-Net 2.8 reads, so a job never inherits a stray value from the shell.
NNUNET_VARIABLES = (
    "nnUNet_raw",
    "nnUNet_preprocessed",
    "nnUNet_results",
    "nnUNet_n_proc_DA",
    "nnUNet_compile",
    "nnUNet_extTrainer",
    "nnUNet_wandb_enabled",
)


@contextlib.contextmanager
def nnunet_environment(
    *,
    raw: Path | None = None,
    preprocessed: Path | None = None,
    results: Path | None = None,
    n_proc_data_augmentation: int | None = 1,
    compile_network: bool = False,
) -> Iterator[None]:
    """Set nnU-Net's variables for the duration of a ``with`` block, then restore them.

    Parameters
    ----------
    raw, preprocessed, results:
        nnU-Net's three folders; ``None`` leaves the variable unset inside the block.
    n_proc_data_augmentation:
        ``nnUNet_n_proc_DA``: data augmentation worker processes (0 = none); ``None``
        leaves it unset, so nnU-Net picks (12, capped at the CPU count).
    compile_network:
        ``nnUNet_compile``: whether nnU-Net may ``torch.compile`` the network (nnU-Net
        never compiles on the CPU anyway).
    """
    values: dict[str, str | None] = dict.fromkeys(NNUNET_VARIABLES)
    values.update({
        "nnUNet_raw": None if raw is None else str(raw),
        "nnUNet_preprocessed": None if preprocessed is None else str(preprocessed),
        "nnUNet_results": None if results is None else str(results),
        "nnUNet_n_proc_DA": None if n_proc_data_augmentation is None
        else str(int(n_proc_data_augmentation)),
        "nnUNet_compile": "t" if compile_network else "f",
        "nnUNet_wandb_enabled": "0",
    })
    saved = {name: os.environ.get(name) for name in values}
    try:
        _apply(values)
        yield
    finally:
        _apply(saved)


@contextlib.contextmanager
def captured_output(log_file: Path) -> Iterator[TextIO]:
    """Send Python-level stdout and stderr to ``log_file`` (appended) inside the block.

    nnU-Net prints its progress, plans and warnings; they belong in the model folder's log,
    not in the user's terminal. Output of spawned worker processes and of C code is not
    captured.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with (
        log_file.open("a", buffering=1) as stream,
        contextlib.redirect_stdout(stream),
        contextlib.redirect_stderr(stream),
    ):
        try:
            yield stream
        finally:
            sys.stdout.flush()


def _apply(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


__all__ = ["NNUNET_VARIABLES", "captured_output", "nnunet_environment"]
