"""Optimization jobs: submit (idempotent), run (crash-safe, exactly one plan), cancel, report.

A job row is the source of truth for clients; the procrastinate queue only carries "run job N". Running a
job twice (a retry after a worker was killed) is safe: the plan is written in the same transaction that
marks the job succeeded, after re-checking under a row lock that no earlier attempt already did it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

import optimizer
from app.db.models import OptimizationJob, Plan
from app.errors import Conflict, InvalidParameter, NotFound, ProblemError
from app.services import optimization

TERMINAL = ("succeeded", "failed", "cancelled")
logger = logging.getLogger(__name__)


class IdempotencyMismatch(ProblemError):
    """The Idempotency-Key was used before with a different request body."""

    status = 422
    title = "Idempotency-Key reused with a different request"


def submit(
    session: Session, request: optimization.OptimizationRequest, idempotency_key: str | None
) -> tuple[OptimizationJob, bool]:
    """Validate and store a job; return (job, created). Same key + same body returns the earlier job."""
    digest = request.digest()
    if idempotency_key:
        existing = session.scalars(
            select(OptimizationJob).where(OptimizationJob.idempotency_key == idempotency_key)
        ).first()
        if existing is not None:
            if existing.request_hash != digest:
                raise IdempotencyMismatch(
                    f"Idempotency-Key {idempotency_key!r} was used for job {existing.id} "
                    "with another request body",
                    job=existing.id,
                )
            return existing, False
    # Fail fast on references the worker could not resolve (unknown plan, reps, units): 404 / 400 now.
    problem, base = optimization.build_problem(session, request)
    report = optimizer.precheck(problem)
    job = OptimizationJob(
        workspace=request.workspace,
        params=request.model_dump(mode="json"),
        request_hash=digest,
        idempotency_key=idempotency_key,
        base_plan_id=base.id if base else None,
        report={"precheck": report.to_dict()},
    )
    if not report.feasible:
        job.status, job.stage, job.progress = "failed", "precheck", 1.0
        job.error = {"type": "infeasible", "reasons": report.reasons, "precheck": report.to_dict()}
        job.finished_at = func.now()
    session.add(job)
    session.flush()
    session.refresh(job)
    return job, True


def get(session: Session, job_id: int) -> OptimizationJob:
    """The job, or 404."""
    job = session.get(OptimizationJob, job_id)
    if job is None:
        raise NotFound(f"no optimization job {job_id}")
    return job


def cancel(session: Session, job_id: int) -> OptimizationJob:
    """Cancel a queued job at once; ask a running one to stop (its result is discarded). 409 when finished."""
    job = session.scalars(
        select(OptimizationJob).where(OptimizationJob.id == job_id).with_for_update()
    ).first()
    if job is None:
        raise NotFound(f"no optimization job {job_id}")
    if job.status in TERMINAL:
        raise Conflict(f"job {job_id} already {job.status}", status_now=job.status)
    job.cancel_requested = True
    if job.status == "queued":
        job.status, job.stage, job.finished_at = "cancelled", "cancelled", func.now()
    session.flush()
    session.refresh(job)
    return job


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class _Progress(threading.Thread):
    """While the solver runs, publish its stage and an elapsed-time progress estimate once a second, and watch
    for cancellation."""

    def __init__(self, factory: sessionmaker[Session], job_id: int, time_limit: float) -> None:
        super().__init__(daemon=True, name=f"job-{job_id}-progress")
        self.factory, self.job_id, self.time_limit = factory, job_id, time_limit
        self.started = time.monotonic()
        self.done = threading.Event()
        self.cancelled = threading.Event()
        self.solver_stage: str | None = None  # set by the solver's on_stage (a str assignment: thread-safe)

    def run(self) -> None:
        while not self.done.wait(1.0):
            self.publish()
        self.publish()  # the last stage the solver reached

    def publish(self) -> None:
        elapsed = time.monotonic() - self.started
        fraction = 0.15 + 0.75 * min(1.0, elapsed / max(self.time_limit, 1e-6))
        with self.factory.begin() as session:
            session.execute(
                update(OptimizationJob)
                .where(OptimizationJob.id == self.job_id, OptimizationJob.status == "running")
                .values(progress=round(fraction, 3), solver_stage=self.solver_stage)
            )
            if session.scalar(
                select(OptimizationJob.cancel_requested).where(OptimizationJob.id == self.job_id)
            ):
                self.cancelled.set()


def run(factory: sessionmaker[Session], job_id: int, should_abort: Callable[[], bool] = lambda: False) -> str:
    """Run job ``job_id`` to a terminal state; return that state. Safe to call again after a crash."""
    with factory.begin() as session:
        job = session.scalars(
            select(OptimizationJob).where(OptimizationJob.id == job_id).with_for_update()
        ).first()
        if job is None:
            return "missing"
        if job.status in TERMINAL:
            return job.status
        if job.cancel_requested:
            job.status, job.stage, job.finished_at = "cancelled", "cancelled", func.now()
            return "cancelled"
        job.status, job.stage, job.progress = "running", "loading", 0.05
        job.attempts += 1
        job.worker = _worker_name()
        job.started_at = job.started_at or func.now()
        request = optimization.OptimizationRequest.model_validate(job.params)
        logger.info("job %s: attempt %s started on %s", job_id, job.attempts, job.worker)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    try:
        with factory.begin() as session:
            problem, base = optimization.build_problem(session, request)
            base_id = base.id if base else None
        timings["load"] = round(time.perf_counter() - started, 3)
        _stage(factory, job_id, "solving", 0.15)
        watcher = _Progress(factory, job_id, request.time_limit_s)
        watcher.start()
        stopped_during: str | None = None
        try:
            # a cancel stops the solver itself (within about a second), not only the saving of its plan
            solution = optimizer.solve(
                problem,
                should_stop=lambda: watcher.cancelled.is_set() or should_abort(),
                on_stage=lambda stage: setattr(watcher, "solver_stage", stage),
            )
        except optimizer.Cancelled as stopped:
            stopped_during = stopped.stage
        finally:
            watcher.done.set()
            watcher.join()
        timings["solve"] = round(time.perf_counter() - started - timings["load"], 3)
        if stopped_during is not None:
            stop = {"type": "cancelled", "solver_stopped_during": stopped_during}
            return _finish(factory, job_id, "cancelled", error=stop, timings=timings)
        if watcher.cancelled.is_set() or should_abort():
            return _finish(factory, job_id, "cancelled", error={"type": "cancelled"}, timings=timings)
        if not solution.feasible:
            error = {
                "type": "infeasible" if solution.status == "infeasible" else "no_solution",
                "reasons": solution.reasons or solution.violations,
                "notes": solution.notes,
            }
            return _finish(
                factory,
                job_id,
                "failed",
                error=error,
                timings=timings,
                report=optimization.solution_report(solution),
            )
        _stage(factory, job_id, "saving", 0.95)
        with factory.begin() as session:
            job = session.scalars(
                select(OptimizationJob).where(OptimizationJob.id == job_id).with_for_update()
            ).one()
            if job.result_plan_id is not None or job.status in TERMINAL:
                return job.status  # an earlier attempt finished first: never a second plan
            base_plan = session.get(Plan, base_id) if base_id else None
            plan = optimization.save_plan(session, request, base_plan, problem, solution)
            timings["save"] = round(time.perf_counter() - started - timings["load"] - timings["solve"], 3)
            job.result_plan_id = plan.id
            job.status, job.stage, job.progress, job.finished_at = "succeeded", "done", 1.0, func.now()
            job.report = {**(job.report or {}), "solution": optimization.solution_report(solution)}
            job.timings = timings
        logger.info("job %s succeeded: draft plan %s", job_id, plan.id)
        return "succeeded"
    except ProblemError as exc:
        return _finish(
            factory,
            job_id,
            "failed",
            error={"type": "invalid", "detail": exc.detail, **exc.extra},
            timings=timings,
        )
    except Exception as exc:  # recorded on the job for the client, then re-raised for the queue's log
        _finish(
            factory,
            job_id,
            "failed",
            error={"type": "error", "detail": f"{type(exc).__name__}: {exc}"},
            timings=timings,
        )
        raise


def _stage(factory: sessionmaker[Session], job_id: int, stage: str, progress: float) -> None:
    with factory.begin() as session:
        session.execute(
            update(OptimizationJob)
            .where(OptimizationJob.id == job_id, OptimizationJob.status == "running")
            .values(stage=stage, progress=progress)
        )


def _finish(
    factory: sessionmaker[Session],
    job_id: int,
    status: str,
    *,
    error: dict[str, Any] | None,
    timings: dict[str, float],
    report: dict[str, Any] | None = None,
) -> str:
    logger.info("job %s %s: %s", job_id, status, (error or {}).get("type"))
    with factory.begin() as session:
        job = session.scalars(
            select(OptimizationJob).where(OptimizationJob.id == job_id).with_for_update()
        ).one()
        if job.status in TERMINAL:
            return job.status
        job.status, job.stage, job.progress, job.finished_at = status, status, 1.0, func.now()
        job.error, job.timings = error, timings
        if report is not None:
            job.report = {**(job.report or {}), "solution": report}
    return status


def validate_key(key: str | None) -> str | None:
    """Idempotency keys are 1..200 visible characters."""
    if key is None:
        return None
    if not 0 < len(key) <= 200 or not key.isprintable():
        raise InvalidParameter(
            "Idempotency-Key must be 1-200 printable characters", parameter="Idempotency-Key"
        )
    return key
