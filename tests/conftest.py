"""Shared fixtures: the real data set, and a fresh PostGIS database per test run."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app import localdb
from app.db import bootstrap
from app.settings import PROJECT_ROOT, get_settings


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real Census data set; its absence is a failure, never a skip."""
    path = Path(os.environ.get("TERRITORY_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data"))
    if not (path / "README.md").exists():
        pytest.fail(f"real data set not found at {path}: set TERRITORY_DATA_DIR to the shared/data folder")
    return path


def _admin_url() -> str:
    settings = get_settings()
    if settings.effective_database_url:
        return settings.effective_database_url
    local = localdb.start(settings.local_db_dir)
    return local.url("postgres")


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def create_fresh_database(prefix: str = "territory_test") -> str:
    """Create an empty database with PostGIS and our migrations on the admin server; return its URL."""
    admin = _admin_url()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_libpq(admin), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    bootstrap.upgrade(url)
    return url


def drop_database(url: str) -> None:
    """Drop a database made by ``create_fresh_database``."""
    name = make_url(url).database
    with psycopg.connect(_libpq(_admin_url()), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh, migrated database for this test run, dropped at the end."""
    url = create_fresh_database()
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """One outer transaction per test, rolled back at the end: tests never see each other's rows."""
    with engine.connect() as conn:
        outer = conn.begin()
        yield conn
        outer.rollback()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    """Sessions whose commits become savepoints inside the test's outer transaction."""
    return sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as session:
        yield session
