"""The procrastinate app, its tasks, and the stalled-job sweeper that makes worker crashes harmless."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import procrastinate
from procrastinate import JobContext, PsycopgConnector

from app.db.session import engine_for, session_factory
from app.services import jobs

logger = logging.getLogger(__name__)
QUEUE = "optimize"
OPTIMIZE = "territory:optimize"
RETRY_STALLED = "territory:retry_stalled"
STALLED_AFTER_S = {"value": 30.0}


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@lru_cache(maxsize=4)
def make_app(database_url: str) -> procrastinate.App:
    """A procrastinate app on ``database_url`` with our tasks registered on it (one app per database)."""
    app = procrastinate.App(connector=PsycopgConnector(conninfo=_libpq(database_url)))

    @app.task(name=OPTIMIZE, queue=QUEUE, pass_context=True)
    def optimize(context: JobContext, job_id: int) -> str:
        """Run one optimization job (safe to run again after a crash: see app.services.jobs.run)."""
        factory = session_factory(engine_for(database_url))
        return jobs.run(factory, job_id, should_abort=context.should_abort)

    @app.periodic(cron="* * * * * */2")
    @app.task(name=RETRY_STALLED, queue=QUEUE, pass_context=True, queueing_lock=RETRY_STALLED)
    async def retry_stalled(context: JobContext, timestamp: int) -> None:
        """Requeue optimization jobs whose worker stopped sending heartbeats (killed, OOM, machine lost)."""
        manager = context.app.job_manager
        stalled = await manager.get_stalled_jobs(
            task_name=OPTIMIZE, seconds_since_heartbeat=STALLED_AFTER_S["value"]
        )
        for job in stalled:
            logger.warning("job %s stalled on a dead worker: retrying", job.id)
            await manager.retry_job(job)

    return app


def defer_optimization(database_url: str, job_id: int) -> int:
    """Queue ``job_id`` for a worker; return the queue's job id."""
    app = make_app(database_url)
    with app.open():
        queued: Any = app.configure_task(OPTIMIZE).defer(job_id=job_id)
    return int(queued)
