"""Annotated dependency aliases shared by the routes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.settings import Settings


def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """One session and one transaction per request: committed on success, rolled back on error."""
    with request.app.state.session_factory() as session, session.begin():
        yield session


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
# scope="function": commit before the response is sent, so a client that reads right after a write sees it.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
