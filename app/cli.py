"""`territory`: the one command-line entry point (serve, db, geodata import, demo)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

import geodata
from app import localdb
from app.db import bootstrap
from app.db.session import engine_for, session_factory, transaction
from app.errors import Conflict, ProblemError
from app.schemas import ImportReport
from app.services import demo, geography_import
from app.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from app.db.models import OptimizationJob

app = typer.Typer(help="Sales territory planning service.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="The database: local cluster and migrations.", no_args_is_help=True)
geodata_app = typer.Typer(help="Geography: import units and adjacency.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo workspace.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(geodata_app, name="geodata")
app.add_typer(demo_app, name="demo")

console = Console(stderr=True)


def _database_url() -> str:
    try:
        return bootstrap.resolve_database_url(get_settings())
    except localdb.LocalDatabaseError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


def _ready_database(load_demo: bool) -> str:
    url = _database_url()
    console.print(f"database: {_redact(url)}")
    bootstrap.upgrade(url)
    if load_demo and bootstrap.is_empty(url):
        console.print("empty database: loading the demo workspace ...")
        with transaction(session_factory(engine_for(url))) as session:
            summary = demo.load(session)
        console.print(f"demo workspace loaded: {summary}")
    return url


def _redact(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}{':***' if ':' in creds else ''}@{host}"


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
    demo_data: Annotated[
        bool, typer.Option("--demo/--no-demo", help="load the demo workspace if empty")
    ] = True,
    workers: Annotated[int, typer.Option(help="optimization worker processes to start beside the API")] = 1,
) -> None:
    """Start the API (local database, migrations and demo data included when nothing is configured)."""
    import uvicorn

    from app.main import create_app

    settings = get_settings()
    url = _ready_database(demo_data and settings.load_demo)
    bind_host, bind_port = host or settings.host, port or settings.port
    children = [
        subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env={**os.environ, "DATABASE_URL": url})
        for _ in range(workers)
    ]
    if children:
        console.print(f"started {len(children)} optimization worker(s)")
    console.print(f"serving on http://{bind_host}:{bind_port}  (API docs: /docs)")
    try:
        uvicorn.run(
            create_app(settings, database_url=url),
            host=bind_host,
            port=bind_port,
            log_level="info",
            access_log=settings.access_log,
        )
    finally:
        _stop_workers(children, grace_s=10.0)


def _stop_workers(children: list[subprocess.Popen[bytes]], grace_s: float) -> None:
    """SIGTERM the workers, then SIGKILL those still solving after ``grace_s`` (their job is retried)."""
    for child in children:
        child.terminate()
    deadline = time.monotonic() + grace_s
    for child in children:
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            console.print(f"worker {child.pid} still busy after {grace_s:.0f} s: killed (its job is retried)")
            child.kill()
            child.wait()


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="jobs run at once by this process")] = 1,
    heartbeat: Annotated[float, typer.Option(help="seconds between worker heartbeats")] = 2.0,
    stalled_after: Annotated[
        float, typer.Option(help="seconds without heartbeat after which another worker retries a job")
    ] = 20.0,
) -> None:
    """Run an optimization worker (any machine that reaches the database can run more of them)."""
    import logging

    from app.jobs import queue

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # the stalled-job sweeper runs every 2 s: keep the queue's own chatter out of the console
    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    url = _database_url()
    bootstrap.upgrade(url)
    queue.STALLED_AFTER_S["value"] = stalled_after
    jobs_app = queue.make_app(url)
    console.print(f"worker {os.getpid()} on {_redact(url)} (queue {queue.QUEUE})")
    with jobs_app.open():
        jobs_app.run_worker(
            queues=[queue.QUEUE],
            concurrency=concurrency,
            name=f"worker-{os.getpid()}",
            update_heartbeat_interval=heartbeat,
            stalled_worker_timeout=stalled_after,
        )


@db_app.command("start")
@db_app.command("url")
def db_url() -> None:
    """Print the database URL in use (starting the local cluster if needed)."""
    typer.echo(_database_url())


@db_app.command("stop")
def db_stop() -> None:
    """Stop the project-local PostgreSQL cluster."""
    was_running = localdb.stop(get_settings().local_db_dir)
    console.print("stopped" if was_running else "not running")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending Alembic migrations."""
    url = _database_url()
    bootstrap.upgrade(url)
    console.print("migrations applied")


@demo_app.command("load")
def demo_load(force: Annotated[bool, typer.Option(help="load even when units exist")] = False) -> None:
    """Load the demo workspace (Census counties of the north-east, synthetic reps and accounts)."""
    url = _database_url()
    bootstrap.upgrade(url)
    if not force and not bootstrap.is_empty(url):
        console.print("the database already has units; use --force to load the demo anyway")
        raise typer.Exit(0)
    with transaction(session_factory(engine_for(url))) as session:
        console.print(f"demo workspace loaded: {demo.load(session)}")


class _RichProgress:
    """Adapts the import's (stage, done, total) callbacks to a rich progress bar."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=max(total, 1))
        self.progress.update(self.tasks[stage], completed=done, total=max(total, 1))


@geodata_app.command("import")
def geodata_import(
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="GeoJSON, TopoJSON, .zip, .shp, .gpkg")
    ],
    level: Annotated[str, typer.Option(help="zcta | county | custom")] = "zcta",
    contiguity: Annotated[str, typer.Option(help="queen | rook")] = "queen",
    tolerance: Annotated[
        float, typer.Option(help="adjacency tolerance in degrees (e.g. 0.003 for simplified data)")
    ] = 0.0,
    code_field: Annotated[
        str | None, typer.Option(help="property holding the unit code (auto-detected)")
    ] = None,
    name_field: Annotated[str | None, typer.Option(help="property holding the unit name")] = None,
    population_field: Annotated[
        str | None, typer.Option(help="property holding population (auto-detected)")
    ] = None,
    population_csv: Annotated[
        Path | None, typer.Option(exists=True, help="CSV of code -> population")
    ] = None,
    population_code_column: Annotated[
        str | None, typer.Option(help="code column of the population CSV")
    ] = None,
    population_value_column: Annotated[
        str | None, typer.Option(help="value column of the population CSV")
    ] = None,
    layer: Annotated[str | None, typer.Option(help="layer / TopoJSON object to read")] = None,
    strict: Annotated[bool, typer.Option(help="treat every repair as a rejection")] = False,
    allow_rejects: Annotated[
        bool, typer.Option(help="import the valid features and skip rejected ones")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="validate and build adjacency, write nothing")] = False,
    show: Annotated[int, typer.Option(help="how many problems to list")] = 20,
) -> None:
    """Import units and adjacency into PostGIS (idempotent: re-import upserts by level + code)."""
    options = geography_import.ImportOptions(
        level=level,
        contiguity=contiguity,
        tolerance=tolerance,
        code_field=code_field,
        name_field=name_field,
        population_field=population_field,
        population_csv=str(population_csv) if population_csv else None,
        population_code_column=population_code_column,
        population_value_column=population_value_column,
        strict=strict,
        allow_rejects=allow_rejects,
        layer=layer,
    )
    started = time.perf_counter()
    columns = (TextColumn("{task.description:<16}"), BarColumn(), TextColumn("{task.completed}/{task.total}"))
    try:
        with Progress(*columns, TimeElapsedColumn(), console=console, transient=False) as bar:
            callback = _RichProgress(bar)
            if dry_run:
                units, adjacency, problems, timings = geography_import.prepare(path, options, callback)
                _print_dry_run(units, adjacency, problems, timings, show)
                return
            url = _database_url()
            bootstrap.upgrade(url)
            with transaction(session_factory(engine_for(url))) as session:
                report = geography_import.import_geography(session, path, options, progress=callback)
    except geodata.GeodataError as exc:
        console.print(f"[red]import rejected, database unchanged:[/red] {exc}")
        _print_problems([p.to_dict() for p in exc.problems], show)
        raise typer.Exit(1) from exc
    _print_report(report, time.perf_counter() - started, show)


def _print_problems(problems: list[dict[str, object]], show: int) -> None:
    if not problems:
        return
    table = Table("feature/line", "code", "field", "action", "reason", title=f"{len(problems)} problem(s)")
    for item in problems[:show]:
        table.add_row(
            str(item.get("index", "")),
            str(item.get("code") or ""),
            str(item.get("field") or ""),
            str(item["action"]),
            str(item["reason"]),
        )
    console.print(table)
    if len(problems) > show:
        console.print(f"... and {len(problems) - show} more (use --show N)")


def _print_report(report: ImportReport, elapsed: float, show: int) -> None:
    table = Table(title=f"import #{report.import_id}: {report.source}", show_header=False)
    rows = [
        ("level", report.level),
        ("units stored", f"{report.units:,} ({report.inserted:,} new, {report.updated:,} updated)"),
        ("with population", f"{report.with_population:,}"),
        ("adjacency edges", f"{report.adjacency_edges:,} ({report.bridge_edges:,} bridges)"),
        ("components before bridges", f"{report.components_before_bridges:,}"),
        ("repaired / rejected", f"{report.repaired:,} / {report.rejected:,}"),
        ("time", f"{elapsed:.1f} s  " + "  ".join(f"{k} {v:.1f}s" for k, v in report.timings_s.items())),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    _print_problems([p.model_dump() for p in report.problems], show)


def _print_dry_run(
    units: geodata.UnitSet,
    adjacency: geodata.Adjacency,
    problems: list[geodata.Problem],
    timings: dict[str, float],
    show: int,
) -> None:
    console.print(
        f"dry run: {len(units.frame):,} units valid, {len(adjacency.a):,} adjacency edges "
        f"({int(adjacency.is_bridge.sum()):,} bridges), {adjacency.n_components_before_bridges} components "
        f"before bridges; nothing written. " + " ".join(f"{k} {v:.1f}s" for k, v in timings.items())
    )
    _print_problems([p.to_dict() for p in problems], show)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="territory")


def _fraction(text: str, what: str) -> float:
    """'10%' or '10' -> 0.10; '0.1' stays 0.1 only when written below 1 with a decimal point."""
    raw = text.strip().rstrip("%")
    try:
        value = float(raw)
    except ValueError as exc:
        raise typer.BadParameter(f"{what} must look like 10% or 0.1, got {text!r}") from exc
    if text.strip().endswith("%") or value >= 1:
        value /= 100
    if not 0 <= value <= 1:
        raise typer.BadParameter(f"{what} must be between 0% and 100%, got {text!r}")
    return value


def _follow(factory: sessionmaker[Session], job_id: int, bar: Progress, task: TaskID) -> OptimizationJob:
    """Show the job's stage and progress until it ends; return it."""
    from app.services import jobs

    while True:
        with factory() as session:
            job = jobs.get(session, job_id)
            detail = f": {job.solver_stage}" if job.stage == "solving" and job.solver_stage else ""
            bar.update(task, completed=job.progress, description=job.stage + detail)
            if job.status in jobs.TERMINAL:
                return job
        time.sleep(0.5)


@app.command()
def rebalance(
    from_plan: Annotated[str, typer.Option("--from", help="'active' or a plan id to start from")] = "active",
    quarter: Annotated[str | None, typer.Option(help="quarter label of the proposal, e.g. 2027Q1")] = None,
    max_moved: Annotated[
        str | None, typer.Option(help="disruption budget: share of units that may move")
    ] = "10%",
    tolerance: Annotated[str, typer.Option(help="allowed deviation from the target workload")] = "5%",
    measure: Annotated[
        str, typer.Option(help="balance measure: workload, value, accounts, population")
    ] = "workload",
    time_limit: Annotated[float, typer.Option(help="solver time limit, seconds")] = 60.0,
    seed: Annotated[int, typer.Option(help="random seed (same inputs + seed = same plan)")] = 0,
    local: Annotated[
        bool, typer.Option("--local", help="solve in this process instead of via a worker")
    ] = False,
    workspace: Annotated[str, typer.Option(help="workspace")] = "default",
) -> None:
    """Propose a rebalanced draft plan for the next quarter, moving as little as the budget allows."""
    import threading

    from app.jobs.queue import defer_optimization
    from app.services import jobs, optimization
    from app.services.plans.compare import compare

    try:
        request = optimization.OptimizationRequest(
            workspace=workspace,
            base_plan="active" if from_plan == "active" else int(from_plan),
            quarter=quarter,
            measures=[measure],
            tolerance={measure: _fraction(tolerance, "--tolerance")},
            max_moved_units_pct=None
            if max_moved in (None, "", "none")
            else 100 * _fraction(max_moved, "--max-moved"),
            time_limit_s=time_limit,
            seed=seed,
            name=f"Rebalance {quarter}" if quarter else None,
        )
    except (ValueError, typer.BadParameter) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    url = _database_url()
    bootstrap.upgrade(url)
    factory = session_factory(engine_for(url))
    try:
        with factory.begin() as session:
            job, _ = jobs.submit(session, request, None)
            job_id, status = job.id, job.status
    except ProblemError as exc:
        console.print(f"[red]rejected:[/red] {exc.detail}")
        raise typer.Exit(2) from exc
    console.print(f"job #{job_id} ({'in this process' if local else 'queued for a worker'})")
    runner: threading.Thread | None = None
    if status == "queued":
        if local:
            runner = threading.Thread(target=jobs.run, args=(factory, job_id), daemon=True)
            runner.start()
        else:
            defer_optimization(url, job_id)
    columns = (TextColumn("{task.description:<10}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"))
    with Progress(*columns, TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("queued", total=1.0)
        try:
            job = _follow(factory, job_id, bar, task)
        except KeyboardInterrupt:
            # Ctrl-C cancels the job (the solver stops within about a second); a second Ctrl-C quits at once
            console.print(f"cancelling job #{job_id} (Ctrl-C again to quit without waiting)")
            with factory.begin() as session, contextlib.suppress(Conflict):
                jobs.cancel(session, job_id)
            try:
                job = _follow(factory, job_id, bar, task)
            except KeyboardInterrupt:
                console.print(f"job #{job_id} is being cancelled; not waiting for it")
                raise typer.Exit(130) from None
    if runner is not None:
        runner.join()
    if job.status == "cancelled":
        console.print(f"job #{job_id} cancelled; no plan was written")
        raise typer.Exit(130)
    if job.status != "succeeded":
        error = job.error or {}
        console.print(f"[red]job #{job_id} {job.status}[/red] ({error.get('type', 'error')})")
        for reason in error.get("reasons") or [error.get("detail", "")]:
            console.print(f"  - {reason}")
        if error.get("type") == "no_solution":
            console.print(
                "no plan met every hard rule within the limits: try a larger --max-moved, a looser "
                "--tolerance or a longer --time-limit"
            )
        raise typer.Exit(1)
    with factory() as session:
        diff = (
            compare(session, job.base_plan_id, job.result_plan_id, limit=0)
            if job.base_plan_id and job.result_plan_id
            else None
        )
    solution = job.report.get("solution", {})
    table = Table(
        title=f"draft plan #{job.result_plan_id} (from plan #{job.base_plan_id})", show_header=False
    )
    if diff:
        before, after = diff["metrics"]["base"], diff["metrics"]["other"]
        old, new = before["max_abs_deviation_pct"][measure], after["max_abs_deviation_pct"][measure]
        table.add_row(f"max {measure} deviation", f"{old:.2f}% -> {new:.2f}%")
        table.add_row("units moved", f"{diff['units_moved']:,} ({diff['units_moved_pct']:.1f}%)")
        table.add_row("accounts moved", f"{diff['accounts_moved']:,}")
        table.add_row("workload moved", f"{diff['workload_moved_pct']:.1f}%")
    if solution.get("gap") is not None:
        table.add_row("gap to lower bound", f"{100 * solution['gap']:.2f}% ({solution.get('status')})")
    table.add_row("solver time", f"{sum(job.timings.values()):.1f} s")
    table.add_row("next", f"GET /plans/{job.result_plan_id}/diagnostics, then approve and activate")
    console.print(table)
    typer.echo(job.result_plan_id)


if __name__ == "__main__":  # last: every command above must be registered first
    main()
