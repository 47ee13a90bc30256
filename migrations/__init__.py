"""Alembic migrations (run through `territory db upgrade` or `alembic upgrade head`)."""
