"""The central team sees which versions sites refused to adopt, and each site's count."""

from __future__ import annotations

import json
from pathlib import Path

from pathloop.server.federation import EVALUATIONS_NAME
from pathloop.server.report import markdown, summarize


def _evaluations(folder: Path, rows: list[dict[str, object]]) -> Path:
    folder.mkdir(parents=True)
    (folder / EVALUATIONS_NAME).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_refusals_per_version_and_site(tmp_path: Path) -> None:
    folder = _evaluations(tmp_path / "checkpoints", [
        {"version": 1, "round": 1, "node_id": 7, "dice": 0.71, "adopted": 1.0,
         "num-refused": 0.0},
        {"version": 1, "round": 1, "node_id": 8, "dice": 0.52, "adopted": 0.0,
         "num-refused": 1.0},
        {"version": 2, "round": 2, "node_id": 7, "dice": 0.40, "adopted": 0.0,
         "num-refused": 1.0},
        {"version": 2, "round": 2, "node_id": 8, "dice": 0.49, "adopted": 0.0,
         "num-refused": 2.0},
        {"version": 2, "round": 2, "node_id": 9, "error": "RoundLimitError at the site"},
    ])
    summary = summarize(folder, {7: "hospital-a", 8: "hospital-b"})
    assert summary.refused_by == {1: ["hospital-b"], 2: ["hospital-a", "hospital-b"]}
    assert summary.refusals == {"hospital-a": 1, "hospital-b": 2}
    assert summary.dice[2] == {"hospital-a": 0.40, "hospital-b": 0.49}
    assert [e["site"] for e in summary.errors] == ["9"]
    text = markdown(summary)
    assert "## Versions sites refused to adopt" in text
    assert "- version 1: hospital-b\n- version 2: hospital-a, hospital-b\n" in text
    assert "| hospital-a | 1 |\n| hospital-b | 2 |" in text


def test_no_refusal_section_when_every_site_adopted(tmp_path: Path) -> None:
    folder = _evaluations(tmp_path / "checkpoints", [
        {"version": 1, "round": 1, "node_id": 7, "dice": 0.71, "adopted": 1.0,
         "num-refused": 0.0},
        {"version": 1, "round": 1, "node_id": 8, "dice": 0.5},  # a site from before the gate
    ])
    summary = summarize(folder)
    assert summary.refused_by == {} and summary.refusals == {"7": 0}
    assert "refused" not in markdown(summary)
