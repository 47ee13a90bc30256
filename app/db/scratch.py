"""Scratch databases for tests and benchmarks: made on the local cluster or on DATABASE_URL's server."""

from __future__ import annotations

import uuid

import psycopg
from sqlalchemy.engine import make_url

from app import localdb
from app.db import bootstrap
from app.settings import get_settings


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
