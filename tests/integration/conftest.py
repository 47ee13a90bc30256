"""An API client bound to the test's transaction."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.main import create_app
from app.settings import Settings


@pytest.fixture
def settings() -> Settings:
    return Settings(max_upload_mb=8, load_demo=False, routing_cache=False)


@pytest.fixture
def client(
    database_url: str, settings: Settings, session_factory: sessionmaker[Session]
) -> Iterator[TestClient]:
    app = create_app(settings, database_url=database_url)
    app.state.session_factory = session_factory
    with TestClient(app) as test_client:
        yield test_client
