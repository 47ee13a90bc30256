"""Persistence: SQLAlchemy 2 + GeoAlchemy2 models and session handling."""
