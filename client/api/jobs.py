"""Background jobs of the site service: tile, predict, rank and train, one at a time.

A job runs in the service's worker thread with its own view of the store; its progress
(``done`` of ``total`` steps and a message) is readable at any time and streamed as
server-sent events. Cancelling a queued job drops it; cancelling a running one stops it at
its next progress step (training stops between folds' epochs only when it reports; until
then the request is recorded and the job ends as ``cancelled`` when it returns). A job that
stops early leaves the store as it was: every use case writes in one transaction or commits
rasters atomically. Jobs live in memory; the audit log records what they wrote.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from pathloop.client.errors import InputError, PathloopError, RecordNotFoundError
from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store

logger = logging.getLogger(__name__)

JobKind = Literal["tile", "predict", "rank", "train"]
JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINAL_STATES = ("succeeded", "failed", "cancelled")
KEPT_JOBS = 200
"""Finished jobs remembered (the oldest are forgotten first)."""


class JobCancelled(Exception):
    """Raised inside a job's progress callback once it has been cancelled."""


@dataclass(frozen=True)
class Job:
    """A snapshot of one background job."""

    id: str
    kind: JobKind
    slide_id: int | None
    params: Mapping[str, Any]
    user: str
    state: JobState = "queued"
    done: int = 0
    total: int = 0
    message: str = ""
    error: str | None = None
    result: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started_at: datetime | None = None
    finished_at: datetime | None = None


Progress = Callable[[int, int, str], None]
JobFunction = Callable[[SiteSettings, Store, "Job", Progress], Mapping[str, Any]]


class JobRunner:
    """Queues jobs and runs them one after another in a worker thread.

    Parameters
    ----------
    settings, store:
        The site's.
    functions:
        What each job kind runs (see :mod:`pathloop.client.api.job_kinds`).
    on_finish:
        Called with every job that ends (e.g. to refresh cached overlays).
    """

    def __init__(self, settings: SiteSettings, store: Store,
                 functions: Mapping[str, JobFunction],
                 on_finish: Callable[[Job], None] | None = None) -> None:
        self.settings = settings
        self.store = store
        self.functions = dict(functions)
        self.on_finish = on_finish
        self._jobs: dict[str, Job] = {}
        self._cancelled: set[str] = set()
        self._changed = threading.Condition()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pathloop-job")

    def submit(self, kind: str, *, slide_id: int | None, params: Mapping[str, Any],
               user: str) -> Job:
        """Queue a job; :class:`InputError` for an unknown kind or a missing slide."""
        if kind not in self.functions:
            raise InputError(f"job kind {kind!r}: one of {', '.join(self.functions)}")
        if slide_id is not None:
            self.store.get_slide(slide_id)
        elif kind in ("tile", "predict", "rank"):
            raise InputError(f"a {kind} job needs a slide_id")
        job = Job(uuid.uuid4().hex[:12], kind, slide_id, dict(params), user)  # type: ignore[arg-type]
        self._put(job)
        self._pool.submit(self._run, job.id)
        return job

    def get(self, job_id: str) -> Job:
        """The job's current snapshot, or :class:`RecordNotFoundError`."""
        with self._changed:
            if job_id not in self._jobs:
                raise RecordNotFoundError(f"job {job_id} not found")
            return self._jobs[job_id]

    def list(self) -> list[Job]:
        """Every remembered job, newest first."""
        with self._changed:
            return sorted(self._jobs.values(), key=lambda j: j.created_at, reverse=True)

    def cancel(self, job_id: str) -> Job:
        """Ask a job to stop; a queued job is cancelled at once."""
        job = self.get(job_id)
        if job.state in FINAL_STATES:
            return job
        with self._changed:
            self._cancelled.add(job_id)
        if job.state == "queued":
            return self._finish(job_id, "cancelled", message="cancelled before it started")
        return self._update(job_id, message="cancelling…")

    def wait_change(self, job_id: str, seen: Job | None, timeout: float) -> Job:
        """The job once it differs from ``seen`` (or after ``timeout`` seconds)."""
        with self._changed:
            self._changed.wait_for(lambda: self._jobs.get(job_id) != seen, timeout)
        return self.get(job_id)

    def shutdown(self) -> None:
        """Cancel what is queued or running and wait for the worker."""
        for job in self.list():
            if job.state not in FINAL_STATES:
                self.cancel(job.id)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, job_id: str) -> None:
        job = self.get(job_id)
        if job.state != "queued":
            return
        job = self._update(job_id, state="running", started_at=datetime.now(UTC),
                           message="started")

        def progress(done: int, total: int, message: str = "") -> None:
            if job_id in self._cancelled:
                raise JobCancelled
            self._update(job_id, done=done, total=total, message=message or f"{done}/{total}")

        try:
            result = self.functions[job.kind](self.settings, self.store, job, progress)
        except JobCancelled:
            self._finish(job_id, "cancelled", message="cancelled")
        except PathloopError as error:
            self._finish(job_id, "failed", error=str(error), message="failed")
        except Exception as error:  # a bug: keep the traceback in the log, tell the user
            logger.exception("job %s (%s) failed", job_id, job.kind)
            self._finish(job_id, "failed", error=f"internal error: {type(error).__name__}",
                         message="failed")
        else:
            state: JobState = "cancelled" if job_id in self._cancelled else "succeeded"
            self._finish(job_id, state, result=dict(result), message="done")

    def _finish(self, job_id: str, state: JobState, **changes: Any) -> Job:
        job = self._update(job_id, state=state, finished_at=datetime.now(UTC), **changes)
        if self.on_finish is not None:
            self.on_finish(job)
        return job

    def _put(self, job: Job) -> None:
        with self._changed:
            self._jobs[job.id] = job
            finished = sorted((j for j in self._jobs.values() if j.state in FINAL_STATES),
                              key=lambda j: j.created_at)
            for old in finished[:max(0, len(self._jobs) - KEPT_JOBS)]:
                del self._jobs[old.id]
            self._changed.notify_all()

    def _update(self, job_id: str, **changes: Any) -> Job:
        with self._changed:
            job = replace(self._jobs[job_id], **changes)
            self._jobs[job_id] = job
            self._changed.notify_all()
            return job
