"""Database models (PostGIS). Geometry is EPSG:4326 everywhere."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

UNIT_LEVELS = ("zcta", "county", "custom")
ACCOUNT_STAGES = ("prospect", "open", "won", "lost")
DEAL_STAGES = ("open", "won", "lost")
PLAN_STATUSES = ("draft", "approved", "active", "archived")
PLAN_SOURCES = ("imported", "optimizer", "manual")


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
    __table_args__ = (CheckConstraint("capacity > 0", name="ck_rep_capacity"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str] = mapped_column(Text)
    home: Mapped[Any] = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=True)
    home_zip: Mapped[str | None] = mapped_column(String(10))
    capacity: Mapped[float] = mapped_column(Double, default=1.0)
    segment: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Account(Base):
    """A customer or prospect, placed on a unit by its point or its ZIP."""

    __tablename__ = "account"
    __table_args__ = (
        CheckConstraint("stage IN ('prospect', 'open', 'won', 'lost')", name="ck_account_stage"),
        CheckConstraint("workload >= 0", name="ck_account_workload"),
        CheckConstraint("value >= 0", name="ck_account_value"),
        CheckConstraint(
            "placement IS NULL OR placement IN ('point', 'zip', 'unmatched')", name="ck_account_placement"
        ),
        Index("ix_account_location", "location", postgresql_using="gist"),
        Index("ix_account_unit", "unit_id"),
        Index("ix_account_unplaced", "external_id", postgresql_where=text("unit_id IS NULL")),
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
    # 'point' | 'zip' | 'unmatched'; NULL when written by a path that does not record it (see 0003).
    placement: Mapped[str | None] = mapped_column(String(16))


class Deal(Base):
    """A deal in an account's history: feeds potential and white-space analysis."""

    __tablename__ = "deal"
    __table_args__ = (
        CheckConstraint("stage IN ('open', 'won', 'lost')", name="ck_deal_stage"),
        CheckConstraint("amount >= 0", name="ck_deal_amount"),
        Index("ix_deal_account", "account_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    account_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("account.id", ondelete="CASCADE"))
    amount: Mapped[float] = mapped_column(Double, default=0.0)
    stage: Mapped[str] = mapped_column(String(16), default="open")
    product: Mapped[str | None] = mapped_column(String(64))
    closed_on: Mapped[date | None] = mapped_column(Date)


class Plan(Base):
    """A territory plan: imported as-is, made by the optimizer, or edited by hand.

    ``single_owner`` plans (optimizer output, and every plan once active) may claim a unit only once: the
    flag is copied onto every claim by a cascading foreign key and a partial unique index enforces it.
    Exactly one plan per workspace may be active (partial unique index).
    """

    __tablename__ = "plan"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'approved', 'active', 'archived')", name="ck_plan_status"),
        CheckConstraint("source IN ('imported', 'optimizer', 'manual')", name="ck_plan_source"),
        CheckConstraint("status <> 'active' OR single_owner", name="ck_plan_active_single_owner"),
        UniqueConstraint("id", "single_owner", name="uq_plan_id_single_owner"),
        Index("uq_plan_one_active", "workspace", unique=True, postgresql_where=text("status = 'active'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    workspace: Mapped[str] = mapped_column(String(64), default="default")
    name: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    source: Mapped[str] = mapped_column(String(16), default="imported")
    single_owner: Mapped[bool] = mapped_column(Boolean, default=False)
    parent_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("plan.id", ondelete="SET NULL"))
    quarter: Mapped[str | None] = mapped_column(String(16))
    effective_date: Mapped[date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=1)
    seed: Mapped[int | None] = mapped_column(BigInteger)
    solver_version: Mapped[str | None] = mapped_column(String(64))
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Territory(Base):
    """One territory of a plan, owned by a rep, with its dissolved geometry for display and export."""

    __tablename__ = "territory"
    __table_args__ = (
        UniqueConstraint("plan_id", "name", name="uq_territory_plan_name"),
        Index("ix_territory_geom", "geom", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    plan_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("plan.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    rep_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("rep.id", ondelete="SET NULL"))
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class PlanClaim(Base):
    """A plan's claim of a unit for a territory. Imported plans may claim a unit twice (contested)."""

    __tablename__ = "plan_claim"
    __table_args__ = (
        ForeignKeyConstraint(
            ["plan_id", "single_owner"],
            ["plan.id", "plan.single_owner"],
            ondelete="CASCADE",
            onupdate="CASCADE",
            name="fk_plan_claim_plan",
        ),
        Index(
            "uq_plan_claim_single_owner",
            "plan_id",
            "unit_id",
            unique=True,
            postgresql_where=text("single_owner"),
        ),
        Index("ix_plan_claim_unit", "unit_id"),
        Index("ix_plan_claim_territory", "territory_id"),
    )

    plan_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    unit_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("geo_unit.id", ondelete="CASCADE"), primary_key=True
    )
    territory_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("territory.id", ondelete="CASCADE"), primary_key=True
    )
    single_owner: Mapped[bool] = mapped_column(Boolean, default=False)


class OptimizationJob(Base):
    """An optimization request run by a worker; on success it points at the draft plan it made."""

    __tablename__ = "optimization_job"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')",
            name="ck_optimization_job_status",
        ),
        Index("ix_optimization_job_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    workspace: Mapped[str] = mapped_column(String(64), default="default")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    stage: Mapped[str] = mapped_column(String(32), default="queued")
    solver_stage: Mapped[str | None] = mapped_column(String(32))  # inside "solving": what the solver does
    progress: Mapped[float] = mapped_column(Double, default=0.0)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB)
    request_hash: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    queue_job_id: Mapped[int | None] = mapped_column(BigInteger)
    base_plan_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("plan.id", ondelete="SET NULL"))
    result_plan_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("plan.id", ondelete="SET NULL"), unique=True
    )
    report: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    timings: Mapped[dict[str, float]] = mapped_column(JSONB, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
