"""Folds of :func:`~pathloop.client.segmentation.training.train_ensemble` in their own process.

``python -m pathloop.client.segmentation.fold_process`` reads job files from stdin, one path
per line, until stdin closes. Each holds the pickled ``(FoldJob, fold, initial weights)``
that ``train_ensemble`` wrote into its private staging folder (0600); the outcome,
``(detail, seconds)`` or the exception raised, goes to the same name with the suffix
``.outcome``, written whole (renamed into place). Not a command for people.
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

from pathloop.client.segmentation.errors import TrainingError
from pathloop.client.segmentation.training import run_fold


def train_one(job_file: Path) -> None:
    """Train the fold a job file describes and write its outcome beside it."""
    # Written by train_ensemble in its own staging folder moments ago: trusted as pickle.
    job, fold, weights = pickle.loads(job_file.read_bytes())
    outcome: object
    try:
        outcome = run_fold(job, fold, weights)
    except Exception as error:  # handed to the parent, which raises it
        outcome = error
    try:
        data = pickle.dumps(outcome)
    except Exception:  # an exception that does not pickle
        data = pickle.dumps(TrainingError(job.log_file, f"training fold {fold} failed: "
                                          f"{type(outcome).__name__}: {outcome}"))
    partial = job_file.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(partial, job_file.with_suffix(".outcome"))


def main() -> int:
    """Train every fold whose job file comes down stdin."""
    for line in sys.stdin:
        if line.strip():
            train_one(Path(line.strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
