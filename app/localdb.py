"""A project-local PostgreSQL + PostGIS cluster for development and tests.

Used only when no ``DATABASE_URL`` is configured. The cluster lives in a git-ignored folder
(``.local/postgres`` by default), listens on a free loopback port and runs as an unprivileged
user because ``initdb`` and ``postgres`` refuse to run as root.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

SUPERUSER = "territory"
SERVICE_USER = "postgres"


class LocalDatabaseError(RuntimeError):
    """The local cluster could not be prepared; the message says what to do."""


@dataclass(frozen=True)
class LocalCluster:
    """Where the local cluster lives and how to reach it."""

    root: Path
    bindir: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def port_file(self) -> Path:
        return self.root / "port"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port()}/{dbname}"

    def port(self) -> int:
        try:
            return int(self.port_file.read_text().strip())
        except (FileNotFoundError, ValueError) as exc:
            raise LocalDatabaseError(f"local cluster in {self.root} has no port yet; start it first") from exc


def find_bindir() -> Path:
    """Return the newest PostgreSQL server bin directory that has PostGIS next to it."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _version_key(p.parent.name))
    for bindir in reversed(candidates):
        share = Path("/usr/share/postgresql") / bindir.parent.name
        if (bindir / "initdb").exists() and (share / "extension" / "postgis.control").exists():
            return bindir
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run(
            [pg_config, "--bindir", "--sharedir"], capture_output=True, text=True, check=False
        )
        lines = out.stdout.split()
        if len(lines) == 2 and (Path(lines[1]) / "extension" / "postgis.control").exists():
            return Path(lines[0])
    raise LocalDatabaseError(
        "PostgreSQL server + PostGIS not found. Run `scripts/ensure-postgis.sh` as root "
        "(or install postgresql and postgresql-NN-postgis-3), or set DATABASE_URL to a PostGIS server."
    )


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _is_root() -> bool:
    return os.geteuid() == 0


def _as_service_user(cmd: list[str]) -> list[str]:
    """Prefix a command so that it runs unprivileged when we are root."""
    if not _is_root():
        return cmd
    return ["runuser", "-u", SERVICE_USER, "--", *cmd]


def _service_user_can_write(path: Path) -> bool:
    if not _is_root():
        return os.access(path, os.W_OK)
    result = subprocess.run(_as_service_user(["test", "-w", str(path)]), check=False)
    return result.returncode == 0


def _prepare_root(preferred: Path) -> Path:
    """Create the cluster folder, owned by the service user; fall back to /var/tmp if unreachable."""
    for root in (
        preferred,
        Path("/var/tmp") / f"territory-pg-{hashlib.sha1(bytes(preferred)).hexdigest()[:12]}",
    ):
        root.mkdir(parents=True, exist_ok=True)
        if _is_root():
            entry = pwd.getpwnam(SERVICE_USER)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        if _service_user_can_write(root):
            if root != preferred:
                print(f"note: {preferred} is not reachable by user {SERVICE_USER!r}; using {root}")
            return root
    raise LocalDatabaseError(f"user {SERVICE_USER!r} cannot write to {preferred} nor to /var/tmp")


def free_port() -> int:
    """A free TCP port on loopback (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    with open(root / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(cmd: list[str], what: str) -> None:
    result = subprocess.run(_as_service_user(cmd), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LocalDatabaseError(f"{what} failed ({' '.join(cmd)}):\n{result.stdout}{result.stderr}")


def cluster(root: Path) -> LocalCluster:
    """Describe the cluster at ``root`` (which may be relocated to /var/tmp, see ``_prepare_root``)."""
    return LocalCluster(root=_prepare_root(root), bindir=find_bindir())


def is_running(local: LocalCluster) -> bool:
    if not (local.data_dir / "postmaster.pid").exists():
        return False
    result = subprocess.run(
        _as_service_user([str(local.bindir / "pg_ctl"), "status", "-D", str(local.data_dir)]),
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


def start(root: Path) -> LocalCluster:
    """Initialise (once) and start the local cluster; return it. Safe to call concurrently."""
    local = cluster(root)
    with _locked(local.root):
        if not (local.data_dir / "PG_VERSION").exists():
            _run(
                [
                    str(local.bindir / "initdb"),
                    "-D",
                    str(local.data_dir),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ],
                "initdb",
            )
            with open(local.data_dir / "postgresql.auto.conf", "a") as conf:
                # A disposable development cluster: trade crash safety for speed.
                conf.write("listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\n")
                conf.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
                conf.write(
                    "max_connections = 200\nshared_buffers = '512MB'\nmaintenance_work_mem = '512MB'\n"
                )
        if not is_running(local):
            port = _stored_port(local)
            if port is None or not _port_is_free(port):
                port = free_port()
            local.port_file.write_text(f"{port}\n")
            _run(
                [
                    str(local.bindir / "pg_ctl"),
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    str(local.data_dir),
                    "-l",
                    str(local.log_file),
                    "-o",
                    f"-p {port}",
                ],
                f"starting PostgreSQL (log: {local.log_file})",
            )
        _wait_ready(local)
    return local


def _stored_port(local: LocalCluster) -> int | None:
    try:
        return int(local.port_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _wait_ready(local: LocalCluster, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(_plain(local.url("postgres")), connect_timeout=2):
                return
        except psycopg.OperationalError as exc:
            last = exc
            time.sleep(0.2)
    raise LocalDatabaseError(f"local PostgreSQL did not accept connections: {last} (log: {local.log_file})")


def stop(root: Path) -> bool:
    """Stop the local cluster; return whether it was running."""
    local = cluster(root)
    if not is_running(local):
        return False
    _run(
        [str(local.bindir / "pg_ctl"), "stop", "-m", "fast", "-D", str(local.data_dir)], "stopping PostgreSQL"
    )
    return True


def _plain(url: str) -> str:
    """Turn a SQLAlchemy URL into a libpq one."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def ensure_database(local: LocalCluster, dbname: str) -> str:
    """Create ``dbname`` with PostGIS if missing; return its SQLAlchemy URL."""
    with psycopg.connect(_plain(local.url("postgres")), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{_safe_identifier(dbname)}"')
    with psycopg.connect(_plain(local.url(dbname)), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    return local.url(dbname)


def drop_database(local: LocalCluster, dbname: str) -> None:
    """Drop ``dbname`` (used by the test suite for its per-run database)."""
    with psycopg.connect(_plain(local.url("postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{_safe_identifier(dbname)}" WITH (FORCE)')


def _safe_identifier(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise LocalDatabaseError(f"unsafe database name {name!r}")
    return name
