"""Database models (PostGIS). Geometry is EPSG:4326 everywhere."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

UNIT_LEVELS = ("zcta", "county", "custom")
ACCOUNT_STAGES = ("prospect", "open", "won", "lost")


class Base(DeclarativeBase):
    """Declarative base for every table."""


class GeoUnit(Base):
    """A geographic building block of territories: a ZCTA, a county or a custom polygon."""

    __tablename__ = "geo_unit"
    __table_args__ = (
        UniqueConstraint("level", "code", name="uq_geo_unit_level_code"),
        CheckConstraint("level IN ('zcta', 'county', 'custom')", name="ck_geo_unit_level"),
        Index("ix_geo_unit_geom", "geom", postgresql_using="gist"),
        Index("ix_geo_unit_centroid", "centroid", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str | None] = mapped_column(String(8))
    geom: Mapped[Any] = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False
    )
    centroid: Mapped[Any] = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    area_km2: Mapped[float] = mapped_column(Double)
    population: Mapped[float | None] = mapped_column(Double)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class GeoUnitAdjacency(Base):
    """An undirected neighbour pair (a < b); bridges join islands and separate components."""

    __tablename__ = "geo_unit_adjacency"
    __table_args__ = (
        CheckConstraint("a_id < b_id", name="ck_geo_unit_adjacency_ordered"),
        Index("ix_geo_unit_adjacency_b", "b_id"),
    )

    a_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("geo_unit.id", ondelete="CASCADE"), primary_key=True
    )
    b_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("geo_unit.id", ondelete="CASCADE"), primary_key=True
    )
    shared_border_m: Mapped[float] = mapped_column(Double, default=0.0)
    is_bridge: Mapped[bool] = mapped_column(Boolean, default=False)
    bridge_distance_m: Mapped[float] = mapped_column(Double, default=0.0)


class GeoImport(Base):
    """One geography import: what came in, what was repaired or rejected, how long it took."""

    __tablename__ = "geo_import"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(String(16))
    units: Mapped[int] = mapped_column(Integer)
    inserted: Mapped[int] = mapped_column(Integer)
    updated: Mapped[int] = mapped_column(Integer)
    adjacency_edges: Mapped[int] = mapped_column(Integer)
    bridge_edges: Mapped[int] = mapped_column(Integer)
    options: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    problems: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    timings: Mapped[dict[str, float]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Rep(Base):
    """A sales rep: a home base and a capacity."""

    __tablename__ = "rep"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str] = mapped_column(Text)
    home: Mapped[Any] = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=True)
    capacity: Mapped[float] = mapped_column(Double, default=1.0)
    segment: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Account(Base):
    """A customer or prospect, placed on a unit by its point or its ZIP."""

    __tablename__ = "account"
    __table_args__ = (
        CheckConstraint("stage IN ('prospect', 'open', 'won', 'lost')", name="ck_account_stage"),
        CheckConstraint("workload >= 0", name="ck_account_workload"),
        Index("ix_account_location", "location", postgresql_using="gist"),
        Index("ix_account_unit", "unit_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str] = mapped_column(Text)
    location: Mapped[Any] = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=True)
    zip: Mapped[str | None] = mapped_column(String(10))
    unit_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("geo_unit.id", ondelete="SET NULL"))
    value: Mapped[float] = mapped_column(Double, default=0.0)
    workload: Mapped[float] = mapped_column(Double, default=1.0)
    stage: Mapped[str] = mapped_column(String(16), default="prospect")
    segment: Mapped[str | None] = mapped_column(String(64))
    crm_owner: Mapped[str | None] = mapped_column(String(128))
