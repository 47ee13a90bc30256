"""Optimization jobs: submit (202 + Location), poll status and progress, cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from app.api import errors
from app.api.deps import SessionDep
from app.db.models import OptimizationJob
from app.jobs.queue import defer_optimization
from app.services import jobs
from app.services.optimization import OptimizationRequest

router = APIRouter(
    prefix="/optimizations", tags=["optimization"], responses=errors.problem_responses(404, 422)
)


class JobPublic(BaseModel):
    """An optimization job as clients see it."""

    id: int
    status: str
    stage: str
    solver_stage: str | None = Field(
        None,
        description="While solving, what the solver is doing (centre choice, construction, improvement "
        "moves, re-centring, cluster rebuilds, boundary flow, window polishing, lower bound, the exact "
        "model); the last stage it reached once the job ended.",
    )
    progress: float
    params: dict[str, Any]
    base_plan_id: int | None
    result_plan_id: int | None
    report: dict[str, Any] = Field(
        description="`precheck` from submission (with `warnings`: what every contiguous plan must do that a "
        "planner may not expect, e.g. reps living in a region too small for them all to work there), then "
        "`solution` (metrics, bound, gap and `notes`) once solved.",
    )
    error: dict[str, Any] | None
    timings: dict[str, float]
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    links: dict[str, str]


def public(job: OptimizationJob) -> JobPublic:
    """The job with links to itself and to its plan."""
    links = {"self": f"/optimizations/{job.id}"}
    if job.result_plan_id:
        links["plan"] = f"/plans/{job.result_plan_id}"
        links["diagnostics"] = f"/plans/{job.result_plan_id}/diagnostics"
        if job.base_plan_id:
            links["compare"] = f"/plans/{job.base_plan_id}/compare/{job.result_plan_id}"
    return JobPublic(
        id=job.id,
        status=job.status,
        stage=job.stage,
        solver_stage=job.solver_stage,
        progress=job.progress,
        params=job.params,
        base_plan_id=job.base_plan_id,
        result_plan_id=job.result_plan_id,
        report=job.report or {},
        error=job.error,
        timings=job.timings or {},
        attempts=job.attempts,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        links=links,
    )


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=JobPublic)
async def submit(
    request: Request,
    response: Response,
    body: OptimizationRequest,
    idempotency_key: Annotated[str | None, Header(description="retry-safe submission key")] = None,
) -> JobPublic:
    """Queue an optimization; poll the Location for progress; the result is a draft plan."""
    key = jobs.validate_key(idempotency_key)

    def create() -> tuple[OptimizationJob, bool]:
        with request.app.state.session_factory.begin() as session:
            return jobs.submit(session, body, key)

    job, created = await run_in_threadpool(create)
    if created and job.status == "queued":
        queue_id = await run_in_threadpool(defer_optimization, request.app.state.database_url, job.id)

        def remember() -> OptimizationJob:
            with request.app.state.session_factory.begin() as session:
                stored = jobs.get(session, job.id)
                stored.queue_job_id = queue_id
                return stored

        job = await run_in_threadpool(remember)
    response.headers["Location"] = f"/optimizations/{job.id}"
    return public(job)


@router.get("", response_model=list[JobPublic])
def list_jobs(session: SessionDep, limit: int = 50) -> list[JobPublic]:
    """Recent optimization jobs, newest first."""
    rows = session.scalars(select(OptimizationJob).order_by(OptimizationJob.id.desc()).limit(min(limit, 500)))
    return [public(job) for job in rows]


@router.get("/{job_id}", response_model=JobPublic)
def get_job(job_id: int, session: SessionDep) -> JobPublic:
    """Status, stage, progress and timings; on success links to the draft plan, diagnostics and comparison."""
    return public(jobs.get(session, job_id))


@router.delete("/{job_id}", response_model=JobPublic, responses=errors.problem_responses(409))
def cancel_job(job_id: int, session: SessionDep) -> JobPublic:
    """Cancel a queued job, or stop a running one (its result is discarded)."""
    return public(jobs.cancel(session, job_id))
