"""Run `territory serve` as a child process on a free port: start it, wait until `/healthz` answers, stop it
together with its optimization workers. Used by the end-to-end tests and the benchmarks."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from app.localdb import free_port
from app.settings import PROJECT_ROOT


class ServiceError(RuntimeError):
    """The service exited or did not answer in time (the message ends with its log, when kept)."""


@dataclass
class RunningService:
    """A started `territory serve`: its process (leader of its own process group), base URL and log."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path | None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_service(
    env: Mapping[str, str], *args: str, log: Path | None = None, timeout_s: float = 60.0
) -> RunningService:
    """Start `python -m app.cli serve --host 127.0.0.1 --port P ARGS` with ``env`` on top of this process's
    environment, output to ``log`` (discarded when None), and return once `/healthz` answers 200. Raises
    ServiceError (after stopping it) when it exits first or does not answer within ``timeout_s``."""
    port = free_port()
    cmd = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    with _output(log) as out:
        process = subprocess.Popen(
            cmd,
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service = RunningService(process, port, log)
    try:
        _wait_healthy(service, timeout_s)
    except BaseException:
        stop_service(service)
        raise
    return service


@contextlib.contextmanager
def _output(log: Path | None) -> Iterator[IO[bytes] | int]:
    if log is None:
        yield subprocess.DEVNULL
    else:
        with log.open("wb") as handle:
            yield handle


def _wait_healthy(service: RunningService, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        code = service.process.poll()
        if code is not None:
            raise ServiceError(f"the service exited with {code}{_log_tail(service.log)}")
        try:
            if httpx.get(f"{service.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise ServiceError(f"the service did not answer within {timeout_s:g} s{_log_tail(service.log)}")
        time.sleep(0.2)


def _log_tail(log: Path | None, chars: int = 20_000) -> str:
    if log is None or not log.exists():
        return ""
    return ":\n" + log.read_text(errors="replace")[-chars:]


def stop_service(service: RunningService) -> None:
    """SIGTERM the service's process group (API and workers), then SIGKILL whatever is left."""
    process = service.process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # a worker child may outlive its parent briefly
        os.killpg(process.pid, signal.SIGKILL)
