"""What each record kind (reps, accounts, deals) accepts: fields, types, bounds, defaults, aliases."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from app.db.models import ACCOUNT_STAGES, DEAL_STAGES

FieldType = Literal["id", "text", "number", "lon", "lat", "zip", "bool", "choice", "date"]
KindName = Literal["reps", "accounts", "deals"]


@dataclass(frozen=True)
class FieldSpec:
    """One field of a record kind.

    ``default`` is the value an empty cell takes (as text, before typing); ``None`` leaves it NULL.
    ``minimum`` is inclusive unless ``exclusive_minimum``.
    """

    name: str
    type: FieldType
    aliases: tuple[str, ...] = ()
    max_length: int | None = None
    minimum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple[str, ...] = ()
    default: str | None = None


@dataclass(frozen=True)
class KindSpec:
    """A record kind: its fields, its table, and how it is located."""

    name: KindName
    singular: str
    table: str
    fields: tuple[FieldSpec, ...]
    zip_field: str | None = None
    located: bool = False
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> FieldSpec:
        return next(f for f in self.fields if f.name == name)


_ID = ("id", "external_id", "externalid", "ext_id", "crm_id")
_LON = ("lon", "lng", "long", "longitude", "x")
_LAT = ("lat", "latitude", "y")
_ZIP = ("zip", "zipcode", "zip_code", "postal_code", "postalcode", "postcode", "zip5")

REPS = KindSpec(
    name="reps",
    singular="rep",
    table="rep",
    fields=(
        FieldSpec("external_id", "id", (*_ID, "rep_id", "rep_external_id"), max_length=128),
        FieldSpec("name", "text", ("name", "rep_name", "full_name")),
        FieldSpec("lon", "lon", (*_LON, "home_lon", "home_longitude")),
        FieldSpec("lat", "lat", (*_LAT, "home_lat", "home_latitude")),
        FieldSpec("home_zip", "zip", ("home_zip", *_ZIP)),
        FieldSpec("capacity", "number", ("capacity",), minimum=0, exclusive_minimum=True, default="1"),
        FieldSpec("segment", "text", ("segment", "team"), max_length=64),
        FieldSpec("active", "bool", ("active", "is_active", "enabled"), default="true"),
    ),
    zip_field="home_zip",
    located=True,
    groups={"home": ("lon", "lat", "home_zip")},
)

ACCOUNTS = KindSpec(
    name="accounts",
    singular="account",
    table="account",
    fields=(
        FieldSpec("external_id", "id", (*_ID, "account_id", "account_external_id"), max_length=128),
        FieldSpec("name", "text", ("name", "account_name", "company", "company_name")),
        FieldSpec("lon", "lon", _LON),
        FieldSpec("lat", "lat", _LAT),
        FieldSpec("zip", "zip", _ZIP, max_length=10),
        FieldSpec("value", "number", ("value", "potential", "revenue"), minimum=0, default="0"),
        FieldSpec("workload", "number", ("workload", "effort"), minimum=0, default="1"),
        FieldSpec("stage", "choice", ("stage", "status"), choices=ACCOUNT_STAGES, default="prospect"),
        FieldSpec("segment", "text", ("segment",), max_length=64),
        FieldSpec(
            "crm_owner", "text", ("crm_owner", "owner", "owner_id", "rep", "rep_id", "account_owner"), 128
        ),
    ),
    zip_field="zip",
    located=True,
    groups={"location": ("lon", "lat", "zip")},
)

DEALS = KindSpec(
    name="deals",
    singular="deal",
    table="deal",
    fields=(
        FieldSpec("external_id", "id", (*_ID, "deal_id", "opportunity_id"), max_length=128),
        FieldSpec(
            "account_external_id",
            "id",
            ("account_external_id", "account_id", "account", "account_ext_id"),
            max_length=128,
        ),
        FieldSpec("amount", "number", ("amount", "value"), minimum=0, default="0"),
        FieldSpec("stage", "choice", ("stage", "status"), choices=DEAL_STAGES, default="open"),
        FieldSpec("product", "text", ("product", "product_line"), max_length=64),
        FieldSpec("closed_on", "date", ("closed_on", "close_date", "closed_at", "closed", "closedate")),
    ),
)

KINDS: dict[str, KindSpec] = {k.name: k for k in (REPS, ACCOUNTS, DEALS)}


def normalise_header(name: str) -> str:
    """Compare column names loosely: case, spaces, dashes and dots do not matter."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")
