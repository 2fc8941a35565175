"""``/api/jobs``: background jobs (tile, predict, rank, train), their progress and events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from pathloop.client.api import convert, schemas
from pathloop.client.api.dependencies import ERRORS, OperatorDep, SiteDep, UserDep, own_slide
from pathloop.client.api.jobs import FINAL_STATES, Job

router = APIRouter(prefix="/api/jobs", tags=["jobs"])


@router.get("", response_model=list[schemas.JobInfo])
def list_jobs(site: SiteDep, user: UserDep) -> list[schemas.JobInfo]:
    """Background jobs, newest first."""
    return [convert.job(j) for j in site.jobs.list()]


@router.post("", response_model=schemas.JobInfo, status_code=202,
             responses={**ERRORS, 429: {"model": schemas.ErrorBody,
                                        "description": "a queue cap ([jobs]) is reached"}})
def submit_job(body: schemas.JobRequest, site: SiteDep, operator: OperatorDep
               ) -> schemas.JobInfo:
    """Queue a job (tile, predict, rank or train); it runs after those before it (operator
    role: training makes the site's next model version); 429 beyond the ``[jobs]`` queue
    caps, 422 for a parameter outside its bounds (nothing is queued)."""
    if body.slide_id is not None:
        own_slide(site, body.slide_id)
    return convert.job(site.jobs.submit(body.kind, slide_id=body.slide_id,
                                        params=body.params, user=operator.user))


@router.get("/{job_id}", response_model=schemas.JobInfo, responses=ERRORS)
def get_job(job_id: str, site: SiteDep, user: UserDep) -> schemas.JobInfo:
    """One job's state and progress."""
    return convert.job(site.jobs.get(job_id))


@router.post("/{job_id}/cancel", response_model=schemas.JobInfo, responses=ERRORS)
def cancel_job(job_id: str, site: SiteDep, operator: OperatorDep) -> schemas.JobInfo:
    """Stop a job (at its next progress step when it is running; operator role)."""
    return convert.job(site.jobs.cancel(job_id))


@router.get("/{job_id}/events", responses=ERRORS, response_class=StreamingResponse)
async def job_events(job_id: str, site: SiteDep, user: UserDep) -> StreamingResponse:
    """Server-sent events: the job's JSON at every change, until it ends."""
    first = site.jobs.get(job_id)

    async def stream() -> AsyncIterator[str]:
        job: Job | None = None
        current = first
        while True:
            if current != job:
                job = current
                yield f"event: job\ndata: {convert.job(job).model_dump_json()}\n\n"
                if job.state in FINAL_STATES:
                    return
            else:
                yield ": keep-alive\n\n"
            current = await asyncio.to_thread(site.jobs.wait_change, job_id, job, 15.0)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store"})
