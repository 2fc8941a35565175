"""Bounded background jobs: queue caps (429), parameters checked before queueing (422),
a cancel honoured inside ranking, and a job's final state telling what it stored.

The runner's own tests use job kinds made here (one that waits for the test, one that
stores and then waits), so what is queued or running is decided by the test, not by timing;
the HTTP tests run the real kinds over the CMU slide of the module's site.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.site import USER

from pathloop.client.api import create_app
from pathloop.client.api.jobs import (
    FINAL_STATES,
    Job,
    JobDefinition,
    JobRunner,
    Progress,
)
from pathloop.client.errors import LimitError
from pathloop.client.settings import JobSettings, SiteSettings
from pathloop.client.store import SlideRecord, Store

WAIT = 120.0
"""Seconds a test waits for a job to reach a state before it fails (a hang, not a timing)."""


def _no_params(settings: SiteSettings, store: Store, slide: SlideRecord | None,
               params: Mapping[str, Any]) -> dict[str, Any]:
    return dict(params)


class _Gate:
    """A job kind that waits until the test opens the gate (or the job is cancelled)."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.started = threading.Event()
        self.stored: list[str] = []

    def wait(self, settings: SiteSettings, store: Store, job: Job, progress: Progress
             ) -> Mapping[str, Any]:
        self.started.set()
        while not self.opened.wait(0.01):
            progress(0, 1, "waiting for the test")
        return {"waited": True}

    def store_then_wait(self, settings: SiteSettings, store: Store, job: Job,
                        progress: Progress) -> Mapping[str, Any]:
        progress(0, 1, "storing")
        self.stored.append(job.id)  # the job's commit: nothing may undo or deny it now
        self.started.set()
        self.opened.wait(WAIT)
        return {"stored": job.id}


@pytest.fixture
def gate() -> Iterator[_Gate]:
    made = _Gate()
    yield made
    made.opened.set()


def _runner(tmp_path: Path, gate: _Gate, **limits: int) -> JobRunner:
    settings = SiteSettings(data_dir=tmp_path, jobs=JobSettings(**limits))
    kinds = {"wait": JobDefinition(_no_params, gate.wait, needs_slide=False),
             "store": JobDefinition(_no_params, gate.store_then_wait, needs_slide=False)}
    return JobRunner(settings, None, kinds)  # type: ignore[arg-type]  # the kinds need no store


def _wait_final(runner: JobRunner, job_id: str) -> Job:
    deadline = time.monotonic() + WAIT
    job = runner.get(job_id)
    while job.state not in FINAL_STATES:
        assert time.monotonic() < deadline, job
        job = runner.wait_change(job_id, job, 1.0)
    return job


def test_the_queue_caps_count_each_users_and_everyones_unfinished_jobs(
        tmp_path: Path, gate: _Gate) -> None:
    runner = _runner(tmp_path, gate, max_queued_per_user=2, max_queued=3)
    try:
        running = runner.submit("wait", slide_id=None, params={}, user="ann")
        assert gate.started.wait(WAIT)
        runner.submit("wait", slide_id=None, params={}, user="ann")  # queued behind it
        with pytest.raises(LimitError, match=r"ann already has 2 jobs queued or running.*"
                                             r"max-queued-per-user = 2"):
            runner.submit("wait", slide_id=None, params={}, user="ann")
        bob = runner.submit("wait", slide_id=None, params={}, user="bob")
        with pytest.raises(LimitError, match=r"3 jobs queued or running.*max-queued = 3"):
            runner.submit("wait", slide_id=None, params={}, user="cy")
        assert len(runner.list()) == 3  # the refused ones were never queued
        # A finished or cancelled job no longer counts.
        runner.cancel(bob.id)
        runner.submit("wait", slide_id=None, params={}, user="cy")
        gate.opened.set()
        assert _wait_final(runner, running.id).state == "succeeded"
        runner.submit("wait", slide_id=None, params={}, user="ann")
    finally:
        gate.opened.set()
        runner.shutdown()


def test_a_cancel_after_the_job_stored_its_result_reports_succeeded(
        tmp_path: Path, gate: _Gate) -> None:
    runner = _runner(tmp_path, gate)
    try:
        job = runner.submit("store", slide_id=None, params={}, user="ann")
        assert gate.started.wait(WAIT)
        assert runner.cancel(job.id).message == "cancelling…"
        gate.opened.set()
        finished = _wait_final(runner, job.id)
        assert gate.stored == [job.id]
        assert finished.state == "succeeded", finished
        assert finished.result == {"stored": job.id}
        assert "cancel came after the result was stored" in finished.message
    finally:
        runner.shutdown()


def test_a_cancelled_waiting_job_ends_cancelled(tmp_path: Path, gate: _Gate) -> None:
    runner = _runner(tmp_path, gate)
    try:
        running = runner.submit("wait", slide_id=None, params={}, user="ann")
        queued = runner.submit("wait", slide_id=None, params={}, user="ann")
        assert gate.started.wait(WAIT)
        assert runner.cancel(queued.id).state == "cancelled"
        runner.cancel(running.id)
        finished = _wait_final(runner, running.id)
        assert (finished.state, finished.result) == ("cancelled", {})
    finally:
        runner.shutdown()


# The site API with the real job kinds.

LIMITS = JobSettings(max_queued_per_user=2, max_queued=3, max_rank_patches=20_000,
                     max_rank_k=50, max_train_epochs=5)


@pytest.fixture(scope="module")
def limited(site: tuple[SiteSettings, str]) -> tuple[SiteSettings, str]:
    settings, token = site
    return settings.model_copy(update={"jobs": LIMITS}), token


@pytest.fixture
def api(limited: tuple[SiteSettings, str]) -> Iterator[TestClient]:
    settings, token = limited
    with TestClient(create_app(settings, viewer_dir=Path("/nonexistent")),
                    headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def _jobs(client: TestClient) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = client.get("/api/jobs").json()
    return listed


@pytest.mark.parametrize(("kind", "params", "named"), [
    ("rank", {"k": 5, "sise": 128}, "'sise' is not one of a rank job's"),
    ("rank", {"mpp": 0.25}, "'mpp' (0.25 µm/px) is finer than slide 1's own resolution"),
    ("rank", {"mpp": "2"}, "'mpp' must be a positive number"),
    ("rank", {"mpp": 0}, "'mpp' must be a positive number"),
    # 2220 × 2967 px in 16 px patches at the slide's own 0.499 µm/px: 139 × 186.
    ("rank", {"size": 16, "mpp": 0.499}, "16 px patches at 0.499 µm/px cut slide 1 into 25854 "
                                         "patches, more than [jobs] max-rank-patches = 20000"),
    ("rank", {"size": 128.0}, "'size' must be an integer"),
    ("rank", {"k": 51}, "'k' must be an integer in [1, 50]"),
    ("rank", {"k": True}, "'k' must be an integer"),
    ("rank", {"strategy": "loudest"}, "'strategy' must be one of uga, random"),
    ("tile", {"mpp": 1.0}, "'mpp' is not one of a tile job's (it takes none)"),
    ("predict", {"windows": 3}, "'windows' is not one of a predict job's"),
    ("train", {"epochs": 6}, "'epochs' must be an integer in [1, 5]"),
    ("train", {"epochs": 2, "lr": 0.1}, "'lr' is not one of a train job's"),
])
def test_bad_parameters_are_refused_before_anything_is_queued(
        api: TestClient, kind: str, params: dict[str, Any], named: str) -> None:
    before = _jobs(api)
    refused = api.post("/api/jobs", json={"kind": kind, "slide_id": 1, "params": params})
    assert refused.status_code == 422, refused.text
    assert named in refused.json()["detail"]
    assert _jobs(api) == before


def test_beyond_the_queue_caps_the_api_answers_429(api: TestClient) -> None:
    site = api.app.state.site  # type: ignore[attr-defined]
    gate = _Gate()
    site.jobs.kinds["wait"] = JobDefinition(_no_params, gate.wait, needs_slide=False)
    try:
        blocker = site.jobs.submit("wait", slide_id=None, params={}, user=USER)
        assert gate.started.wait(WAIT)
        queued = api.post("/api/jobs", json={"kind": "tile", "slide_id": 1})
        assert queued.status_code == 202, queued.text
        refused = api.post("/api/jobs", json={"kind": "tile", "slide_id": 1})
        assert refused.status_code == 429
        assert refused.json()["kind"] == "LimitError"
        assert "max-queued-per-user = 2" in refused.json()["detail"]
        other = site.jobs.submit("wait", slide_id=None, params={}, user="dr-other")
        assert site.jobs.get(other.id).state == "queued"
        with pytest.raises(LimitError, match="max-queued = 3"):  # the site-wide cap
            site.jobs.submit("wait", slide_id=None, params={}, user="dr-third")
        assert api.post(f"/api/jobs/{queued.json()['id']}/cancel").json()["state"] \
            == "cancelled"
        site.jobs.cancel(other.id)
        assert api.post("/api/jobs", json={"kind": "tile", "slide_id": 1}).status_code == 202
    finally:
        gate.opened.set()
    _wait_final(site.jobs, blocker.id)


def test_a_rank_job_cancelled_while_ranking_stops_and_stores_no_ranking(
        api: TestClient, limited: tuple[SiteSettings, str]) -> None:
    settings, _ = limited
    with Store.open(settings) as store:
        before = store.latest_ranking(1)
    # 16 px patches at 0.6 µm/px: 116 × 155 = 17 980, every one on tissue read.
    posted = api.post("/api/jobs", json={"kind": "rank", "slide_id": 1,
                                         "params": {"size": 16, "mpp": 0.6, "k": 5}})
    assert posted.status_code == 202, posted.text
    job_id = posted.json()["id"]
    deadline = time.monotonic() + WAIT
    job = api.get(f"/api/jobs/{job_id}").json()
    while not (job["message"] == "ranking patches" and job["done"] > 0):
        assert job["state"] in ("queued", "running"), job
        assert time.monotonic() < deadline, job
        time.sleep(0.02)
        job = api.get(f"/api/jobs/{job_id}").json()
    api.post(f"/api/jobs/{job_id}/cancel")
    while job["state"] not in FINAL_STATES:
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
        job = api.get(f"/api/jobs/{job_id}").json()
    assert job["state"] == "cancelled", job
    assert job["done"] < job["total"]  # stopped mid-way, not at the end
    with Store.open(settings) as store:
        assert store.latest_ranking(1) == before
