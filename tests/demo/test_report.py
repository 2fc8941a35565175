"""The demo's table: one scorer, findings that say plainly what did not help, the JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from pathloop.client.cli.demo import results_table
from pathloop.client.demo.report import DemoResults, SiteResult


def _results() -> DemoResults:
    return DemoResults(
        seed=2, k=12,
        sites=(SiteResult("site-a", "pink", "solid", 0.80, rounds=(0.81, 0.815)),
               SiteResult("site-b", "purple", "lobular", 0.40, 0.55, 12, 95.0, (0.60, 0.70)),
               SiteResult("site-c", "faded", "inflamed", 0.60, 0.596, 12, 90.0,
                          (0.55, 0.50))),
        seconds={"sample slides, ingestion and tiling": 20.0, "site-a: baseline training": 140.0,
                 "baseline scoring at every site": 10.0},
        round_seconds={1: 100.0, 2: 110.0})


def test_findings_say_what_rose_and_what_did_not() -> None:
    results = _results()
    assert results.mean_baseline() == pytest.approx(0.6)
    assert results.mean_after_round(2) == pytest.approx((0.815 + 0.70 + 0.50) / 3)
    assert results.findings() == [
        "site-b: 12 corrected patches raised held-out Dice (0.400 → 0.550, +0.150).",
        "site-c: 12 corrected patches did not change held-out Dice (0.600 → 0.596, -0.004).",
        "federation: after 2 rounds the global model raised the sites' mean held-out Dice "
        "(0.600 → 0.672, +0.072).",
    ]
    worse = DemoResults(0, 12, (SiteResult("a", "s", "m", 0.8, rounds=(0.7,)),
                                SiteResult("b", "s", "m", 0.6, 0.5, 12, 1.0, (0.6,))))
    assert worse.findings()[0].startswith("b: 12 corrected patches lowered")
    assert "lowered the sites' mean" in worse.findings()[1]


def test_the_table_and_its_json(tmp_path: Path) -> None:
    results = _results()
    console = Console(width=200, record=True)
    console.print(results_table(results))
    text = console.export_text()
    assert "0.400" in text and "0.550 (+0.150)" in text and "0.700 (+0.300)" in text
    assert "global, round 2" in text and "mean" in text
    assert "185 s" in text  # both sites' corrections
    saved = json.loads(results.write(tmp_path).read_text())
    assert saved["sites"][1]["rounds"] == [0.60, 0.70]
    assert saved["round_seconds"] == {"1": 100.0, "2": 110.0}
    assert saved["mean"]["baseline"] == pytest.approx(0.6)
    assert saved["wall_seconds"] == 170.0 and saved["findings"] == results.findings()
