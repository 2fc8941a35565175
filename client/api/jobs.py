"""Background jobs of the site service: tile, predict, rank and train, one at a time.

A job runs in the service's worker thread with its own view of the store; its progress
(``done`` of ``total`` steps and a message) is readable at any time and streamed as
server-sent events.

Jobs are bounded before they are queued: each user may have ``[jobs] max-queued-per-user``
jobs queued or running, all users ``[jobs] max-queued`` (beyond either, :class:`LimitError`:
429), and every job kind checks its parameters first (an unknown key, a wrong type or a
value out of range is an :class:`InputError` naming the parameter: 422, nothing queued).

Cancelling a queued job drops it; cancelling a running one stops it at its next check:
every long loop (tile reads, window batches, patch batches, training iterations) checks, so
a cancel takes effect within seconds. A job that stops early leaves the store as it was:
each use case checks once more right before it stores its result, in one transaction or an
atomic commit. A job whose result was stored is ``succeeded`` even if a cancel arrived in
the meantime (its message says so): the state tells what happened to the store. Jobs live
in memory; the audit log records what they wrote.
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

from pathloop.client.errors import (
    Cancelled,
    InputError,
    LimitError,
    PathloopError,
    RecordNotFoundError,
)
from pathloop.client.settings import SiteSettings
from pathloop.client.store import SlideRecord, Store

logger = logging.getLogger(__name__)

JobKind = Literal["tile", "predict", "rank", "train", "inspect"]
JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINAL_STATES = ("succeeded", "failed", "cancelled")
KEPT_JOBS = 200
"""Finished jobs remembered (the oldest are forgotten first)."""


class JobCancelled(Cancelled):
    """Raised inside a job's progress callback once it has been cancelled."""

    def __init__(self) -> None:
        super().__init__("cancelled")


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


class Progress:
    """A running job's report and cancel check, handed to its function.

    Call it with ``(done, total, message)`` as the work advances: it records the progress,
    or raises :class:`JobCancelled` once the job has been cancelled. Loops too hot to report
    from (training iterations) ask :meth:`stop_requested` instead.
    """

    def __init__(self, runner: JobRunner, job_id: str) -> None:
        self._runner = runner
        self._job_id = job_id

    def __call__(self, done: int, total: int, message: str = "") -> None:
        self._runner._report(self._job_id, done, total, message or f"{done}/{total}")

    def stop_requested(self) -> bool:
        """Whether the job has been cancelled (its work should stop storing nothing)."""
        return self._runner.cancel_requested(self._job_id)


JobCheck = Callable[[SiteSettings, Store, SlideRecord | None, Mapping[str, Any]],
                    dict[str, Any]]
"""Checks a job's parameters before it is queued: the parameters with their defaults
filled in, or :class:`InputError` naming the parameter that is wrong."""
JobFunction = Callable[[SiteSettings, Store, Job, Progress], Mapping[str, Any]]
"""Runs a job (its parameters already checked); returns a JSON-compatible summary."""


@dataclass(frozen=True)
class JobDefinition:
    """What a job kind checks when it is submitted and runs when its turn comes.

    Attributes
    ----------
    check:
        Validates the parameters (unknown keys, types, ranges) against the settings and
        the slide's record (``None`` when the kind takes no slide).
    run:
        The work.
    needs_slide:
        Whether a job of this kind must name a slide.
    """

    check: JobCheck
    run: JobFunction
    needs_slide: bool


class JobRunner:
    """Queues jobs and runs them one after another in a worker thread.

    Parameters
    ----------
    settings, store:
        The site's; ``settings.jobs`` bounds the queue.
    kinds:
        What each job kind checks and runs (see :mod:`pathloop.client.api.job_kinds`).
    on_finish:
        Called with every job that ends (e.g. to refresh cached overlays).
    """

    def __init__(self, settings: SiteSettings, store: Store,
                 kinds: Mapping[str, JobDefinition],
                 on_finish: Callable[[Job], None] | None = None) -> None:
        self.settings = settings
        self.store = store
        self.kinds = dict(kinds)
        self.on_finish = on_finish
        self._jobs: dict[str, Job] = {}
        self._cancelled: set[str] = set()
        self._changed = threading.Condition()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pathloop-job")

    def submit(self, kind: str, *, slide_id: int | None, params: Mapping[str, Any],
               user: str) -> Job:
        """Check a job and queue it.

        Raises
        ------
        InputError
            An unknown kind, a missing slide or a parameter that is wrong (named).
        RecordNotFoundError
            The slide does not exist.
        LimitError
            The user, or all users together, already have as many jobs queued or running
            as ``[jobs]`` allows.
        """
        definition = self.kinds.get(kind)
        if definition is None:
            raise InputError(f"job kind {kind!r}: one of {', '.join(self.kinds)}")
        slide = self.store.get_slide(slide_id) if slide_id is not None else None
        if definition.needs_slide and slide is None:
            raise InputError(f"a {kind} job needs a slide_id")
        checked = definition.check(self.settings, self.store, slide, params)
        job = Job(uuid.uuid4().hex[:12], kind, slide_id, checked, user)  # type: ignore[arg-type]
        with self._changed:
            self._check_limits(user)
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
        """Ask a job to stop; a queued job is cancelled at once, a running one at its next
        check (it ends ``succeeded`` if its result was already stored)."""
        with self._changed:
            job = self.get(job_id)
            if job.state in FINAL_STATES:
                return job
            self._cancelled.add(job_id)
            if job.state == "running":
                return self._update(job_id, message="cancelling…")
            # Still queued: cancelled under the lock, so the worker cannot start it now.
            job = self._update(job_id, state="cancelled", finished_at=datetime.now(UTC),
                               message="cancelled before it started")
        self._notify_finish(job)
        return job

    def cancel_requested(self, job_id: str) -> bool:
        """Whether ``job_id`` has been asked to stop."""
        with self._changed:
            return job_id in self._cancelled

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

    def _check_limits(self, user: str) -> None:
        """:class:`LimitError` when ``user`` or everyone may queue no more (lock held)."""
        limits = self.settings.jobs
        pending = [j for j in self._jobs.values() if j.state not in FINAL_STATES]
        mine = sum(1 for j in pending if j.user == user)
        if mine >= limits.max_queued_per_user:
            raise LimitError(f"{user} already has {mine} jobs queued or running (the limit "
                             f"is [jobs] max-queued-per-user = {limits.max_queued_per_user}): "
                             "wait for one to finish or cancel one")
        if len(pending) >= limits.max_queued:
            raise LimitError(f"the site already has {len(pending)} jobs queued or running "
                             f"(the limit is [jobs] max-queued = {limits.max_queued}): "
                             "try again when one has finished")

    def _run(self, job_id: str) -> None:
        with self._changed:
            job = self._jobs.get(job_id)
            if job is None or job.state != "queued":
                return
            job = self._update(job_id, state="running", started_at=datetime.now(UTC),
                               message="started")
        try:
            result = self.kinds[job.kind].run(self.settings, self.store, job,
                                              Progress(self, job_id))
        except Cancelled as error:
            # A loop's own stop says where it stopped (e.g. a fold and epoch of training).
            self._finish(job_id, "cancelled", message="cancelled" if isinstance(
                error, JobCancelled) else f"cancelled: {error}")
        except PathloopError as error:
            self._finish(job_id, "failed", error=str(error), message="failed")
        except Exception as error:  # a bug: keep the traceback in the log, tell the user
            logger.exception("job %s (%s) failed", job_id, job.kind)
            self._finish(job_id, "failed", error=f"internal error: {type(error).__name__}",
                         message="failed")
        else:
            # The function returned: its result is stored, whatever was asked meanwhile.
            with self._changed:
                late = job_id in self._cancelled
                finished = self._update(
                    job_id, state="succeeded", finished_at=datetime.now(UTC),
                    result=dict(result),
                    message="done (the cancel came after the result was stored)" if late
                    else "done")
            self._notify_finish(finished)

    def _report(self, job_id: str, done: int, total: int, message: str) -> None:
        """Record a running job's progress, or raise :class:`JobCancelled` (atomically)."""
        with self._changed:
            if job_id in self._cancelled:
                raise JobCancelled
            self._update(job_id, done=done, total=total, message=message)

    def _finish(self, job_id: str, state: JobState, **changes: Any) -> Job:
        job = self._update(job_id, state=state, finished_at=datetime.now(UTC), **changes)
        self._notify_finish(job)
        return job

    def _notify_finish(self, job: Job) -> None:
        with self._changed:
            self._cancelled.discard(job.id)
        if self.on_finish is not None:
            self.on_finish(job)

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
