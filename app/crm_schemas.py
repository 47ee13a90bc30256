"""Pydantic models of reps, accounts, deals, their uploads and the unit measures derived from them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ExternalId = Annotated[str, Field(min_length=1, max_length=128, description="your system's id")]
Lon = Annotated[float, Field(ge=-180, le=180, description="longitude, EPSG:4326")]
Lat = Annotated[float, Field(ge=-90, le=90, description="latitude, EPSG:4326")]
Zip = Annotated[
    str,
    Field(
        max_length=10,
        description="US ZIP code as text: '02139', '02139-4307' (ZIP+4 is cut to 5 digits); "
        "4 digits get their leading zero back",
    ),
]
AccountStage = Literal["prospect", "open", "won", "lost"]
DealStage = Literal["open", "won", "lost"]
Placement = Literal["point", "zip", "unmatched"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value


class RepCreate(_Strict):
    """A new rep: home by lon/lat, or by home ZIP (the ZCTA's centroid)."""

    external_id: ExternalId
    name: Annotated[str, Field(min_length=1)]
    lon: Lon | None = None
    lat: Lat | None = None
    home_zip: Zip | None = None
    capacity: Annotated[float, Field(gt=0)] = 1.0
    segment: Annotated[str | None, Field(max_length=64)] = None
    active: bool = True


class RepUpdate(_Strict):
    """Fields to change; absent fields keep their value."""

    name: Annotated[str | None, Field(min_length=1)] = None
    lon: Lon | None = None
    lat: Lat | None = None
    home_zip: Zip | None = None
    capacity: Annotated[float | None, Field(gt=0)] = None
    segment: Annotated[str | None, Field(max_length=64)] = None
    active: bool | None = None


class RepPublic(BaseModel):
    """A rep as stored."""

    external_id: str
    name: str
    lon: float | None
    lat: float | None
    home_zip: str | None
    capacity: float
    segment: str | None
    active: bool


class AccountCreate(_Strict):
    """A new account: located by lon/lat or by ZIP, placed on a unit when it is stored."""

    external_id: ExternalId
    name: Annotated[str, Field(min_length=1)]
    lon: Lon | None = None
    lat: Lat | None = None
    zip: Zip | None = None
    value: Annotated[float, Field(ge=0, description="value / potential")] = 0.0
    workload: Annotated[float, Field(ge=0)] = 1.0
    stage: AccountStage = "prospect"
    segment: Annotated[str | None, Field(max_length=64)] = None
    crm_owner: Annotated[str | None, Field(max_length=128, description="a rep external id or free text")] = (
        None
    )


class AccountUpdate(_Strict):
    """Fields to change; absent fields keep their value. A new lon/lat or ZIP places the account again."""

    name: Annotated[str | None, Field(min_length=1)] = None
    lon: Lon | None = None
    lat: Lat | None = None
    zip: Zip | None = None
    value: Annotated[float | None, Field(ge=0)] = None
    workload: Annotated[float | None, Field(ge=0)] = None
    stage: AccountStage | None = None
    segment: Annotated[str | None, Field(max_length=64)] = None
    crm_owner: Annotated[str | None, Field(max_length=128)] = None


class UnitRef(BaseModel):
    """The unit an account is placed on."""

    level: str
    code: str


class AccountPublic(BaseModel):
    """An account as stored, with the unit it is placed on (null when it matched none)."""

    external_id: str
    name: str
    lon: float | None
    lat: float | None
    zip: str | None
    value: float
    workload: float
    stage: str
    segment: str | None
    crm_owner: str | None
    unit: UnitRef | None
    placement: Placement


class DealCreate(_Strict):
    """A new deal of an existing account."""

    external_id: ExternalId
    account_external_id: ExternalId
    amount: Annotated[float, Field(ge=0)] = 0.0
    stage: DealStage = "open"
    product: Annotated[str | None, Field(max_length=64)] = None
    closed_on: dt.date | None = None


class DealUpdate(_Strict):
    """Fields to change; absent fields keep their value."""

    account_external_id: ExternalId | None = None
    amount: Annotated[float | None, Field(ge=0)] = None
    stage: DealStage | None = None
    product: Annotated[str | None, Field(max_length=64)] = None
    closed_on: dt.date | None = None


class DealPublic(BaseModel):
    """A deal as stored."""

    external_id: str
    account_external_id: str
    amount: float
    stage: str
    product: str | None
    closed_on: dt.date | None


class Link(BaseModel):
    """A paging link."""

    rel: Literal["self", "next", "prev"]
    href: str


class RepPage(BaseModel):
    """One page of reps and the number that matched."""

    items: list[RepPublic]
    total: int
    limit: int
    offset: int
    links: list[Link]


class AccountPage(BaseModel):
    """One page of accounts and the number that matched."""

    items: list[AccountPublic]
    total: int
    limit: int
    offset: int
    links: list[Link]


class DealPage(BaseModel):
    """One page of deals and the number that matched."""

    items: list[DealPublic]
    total: int
    limit: int
    offset: int
    links: list[Link]


class RowIssueModel(BaseModel):
    """A finding about one row (1-based, the header is row 1) and field of an upload."""

    row: int | None = None
    field: str | None = None
    column: str | None = Field(default=None, description="the file's column name")
    value: str | None = None
    message: str


class UnplacedRow(BaseModel):
    """An account stored without a unit: its point and ZIP matched none."""

    row: int
    external_id: str
    reason: str


class PlacementCounts(BaseModel):
    """How the uploaded accounts were placed."""

    point: int
    zip: int
    unmatched: int


class UploadReport(BaseModel):
    """What a bulk upload stored (it is all-or-nothing: a report means every row was written)."""

    kind: Literal["reps", "accounts", "deals"]
    source: str
    format: Literal["csv", "geojson", "xlsx"]
    encoding: str | None = Field(
        description="how the text was decoded: utf-8, utf-8 with BOM, cp1252, utf-16"
    )
    delimiter: str | None
    rows: int
    inserted: int
    updated: int = Field(description="stored rows that changed")
    unchanged: int = Field(description="stored rows the file repeated exactly (left alone)")
    columns: dict[str, str] = Field(description="our field -> the file's column")
    ignored_columns: list[str]
    level: str | None = Field(description="the unit level accounts were placed on")
    placement: PlacementCounts | None
    unplaced: list[UnplacedRow]
    unplaced_count: int
    warnings: list[RowIssueModel]
    warning_count: int
    timings_s: dict[str, float]


class DealTotals(BaseModel):
    """Number and total amount of deals in one stage."""

    count: int
    amount: float


class UnitMeasure(BaseModel):
    """Measures of one unit derived from the accounts placed on it and their deals."""

    code: str
    accounts: int
    workload: float
    value: float = Field(description="sum of account value / potential")
    segments: dict[str, int] = Field(description="accounts per segment (accounts without one are not keyed)")
    stages: dict[str, int] = Field(description="accounts per stage")
    won: DealTotals
    lost: DealTotals
    open: DealTotals


class UnplacedTotals(BaseModel):
    """Accounts that are on no unit (they count in no unit's measures)."""

    accounts: int
    workload: float
    value: float


class UnitMeasures(BaseModel):
    """Measures of every unit of a level (units without accounts included, with zeros)."""

    level: str
    units: list[UnitMeasure]
    totals: UnitMeasure
    unplaced: UnplacedTotals
