"""``pathloop eval uga`` at the command line: a small run, its printed table and its files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pathloop.client.experiments import UgaEvalResult
from pathloop.client.experiments.uga_report import OVERALL, Column, dice_of

pytestmark = [pytest.mark.slow]


def test_eval_uga_prints_and_writes_its_report(shared_data: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "eval"
    done = subprocess.run(
        [sys.executable, "-m", "pathloop.client", "eval", "uga",
         "--monuseg", str(shared_data / "nuclei" / "monuseg"), "--workdir", str(workdir),
         "--baseline", "bladder", "--centres", "colon", "--pool", "1", "--ks", "2",
         "--draws", "0", "--quick"],
        capture_output=True, text=True, timeout=1800, check=False,
        env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stdout + done.stderr
    report, plot = workdir / "uga_eval.md", workdir / "uga_eval.png"
    assert f"report: {report}" in done.stdout and f"plot: {plot}" in done.stdout
    assert plot.read_bytes()[:4] == b"\x89PNG"
    # The printed table is the report's, and its figures are the run's.
    printed_table = [line for line in done.stdout.splitlines() if line.startswith("| colon")]
    assert printed_table and all(line in report.read_text() for line in printed_table)
    result = UgaEvalResult.read(workdir / "uga_eval.json")
    assert {(a.centre, a.arm, a.k) for a in result.arms} >= {
        ("colon", "baseline", 0), ("colon", "uga", 2), ("colon", "random", 2)}
    for column in (Column("baseline", 0), Column("uga", 2), Column("random", 2)):
        mean = dice_of(result, "colon", column)
        assert mean is not None and f"{mean:.3f}" in printed_table[0], column
    assert dice_of(result, OVERALL, Column("baseline", 0)) is not None
    # Libraries' chatter went to the run's log, not the terminal.
    assert "INFO" not in done.stdout + done.stderr
    assert any(workdir.glob("logs/*.log"))
