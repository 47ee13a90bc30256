"""Find or start the database, apply migrations, report whether it is empty."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import localdb
from app.db.models import GeoUnit
from app.db.session import engine_for
from app.settings import PROJECT_ROOT, Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent.parent / "migrations"


def resolve_database_url(settings: Settings) -> str:
    """``DATABASE_URL`` when configured, otherwise the project-local cluster (started on demand)."""
    configured = settings.effective_database_url
    if configured:
        return configured
    local = localdb.start(settings.local_db_dir)
    return localdb.ensure_database(local, settings.local_db_name)


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at our migrations and ``url``."""
    config = (
        Config(str(PROJECT_ROOT / "alembic.ini")) if (PROJECT_ROOT / "alembic.ini").exists() else Config()
    )
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Apply every pending migration."""
    command.upgrade(alembic_config(url), "head")


def is_empty(url: str) -> bool:
    """True when no geography has been imported yet."""
    with Session(engine_for(url)) as session:
        return session.scalar(select(func.count()).select_from(GeoUnit)) == 0
