"""Shared fixtures: the real data set, and a fresh PostGIS database per test run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from app.db.scratch import create_fresh_database, drop_database
from app.settings import PROJECT_ROOT


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real Census data set; its absence is a failure, never a skip."""
    path = Path(os.environ.get("TERRITORY_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data"))
    if not (path / "README.md").exists():
        pytest.fail(f"real data set not found at {path}: set TERRITORY_DATA_DIR to the shared/data folder")
    return path


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
