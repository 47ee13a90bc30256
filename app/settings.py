"""Service settings, read from the environment (prefix ``TERRITORY_``) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every knob of the service; each one is documented in the README."""

    model_config = SettingsConfigDict(env_prefix="TERRITORY_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "TERRITORY_DATABASE_URL"),
        description="PostgreSQL + PostGIS URL; when unset a project-local cluster is started.",
    )
    local_db_dir: Path = Field(default=PROJECT_ROOT / ".local" / "postgres")
    local_db_name: str = "territory"
    data_dir: Path = Field(
        default=PROJECT_ROOT.parent / "shared" / "data",
        description="Real Census data used by tests and benchmarks (never copied into the repo).",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    load_demo: bool = Field(default=True, description="Load the demo workspace when the database is empty.")
    max_upload_mb: int = 512
    access_log: bool = Field(default=False, description="Log every request (costly under routing load).")
    routing_cache: bool = Field(
        default=True, description="Answer lead routing from an in-memory snapshot of the active plan."
    )
    default_page_size: int = 100
    max_page_size: int = 5000

    @property
    def effective_database_url(self) -> str | None:
        """``database_url`` normalised to the psycopg 3 SQLAlchemy driver."""
        if self.database_url is None:
            return None
        return normalise_url(self.database_url)


def normalise_url(url: str) -> str:
    """Accept ``postgres://`` and ``postgresql://`` URLs and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached)."""
    return Settings()
