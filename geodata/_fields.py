"""Field-name conventions shared by the readers and :func:`geodata.prepare_units`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

#: Candidate unit-code fields, in order of preference.
CODE_FIELDS: tuple[str, ...] = (
    "ZCTA5CE20",
    "ZCTA5CE10",
    "GEOID20",
    "GEOID10",
    "GEOID",
    "geoid",
    "ZCTA5",
    "zcta",
    "ZIP",
    "zip",
    "FIPS",
    "fips",
    "code",
    "id",
)

#: Preferred code fields for county layers (before the STATEFP+COUNTYFP concatenation).
COUNTY_CODE_FIELDS: tuple[str, ...] = ("GEOID", "geoid", "GEOID20", "GEOID10", "FIPS", "fips")

#: (state, county) FIPS field pairs that are concatenated into a county code.
COUNTY_FIPS_PAIRS: tuple[tuple[str, str], ...] = (
    ("STATEFP", "COUNTYFP"),
    ("STATEFP20", "COUNTYFP20"),
    ("STATEFP10", "COUNTYFP10"),
    ("statefp", "countyfp"),
)

#: Candidate population fields (case-sensitive, in order of preference).
POPULATION_FIELDS: tuple[str, ...] = (
    "population",
    "POPULATION",
    "pop",
    "POP",
    "TOTPOP",
    "pop2020",
    "pop2010",
    "pop2019_est",
    "POP2010",
    "P001001",
)

#: Candidate display-name fields.
NAME_FIELDS: tuple[str, ...] = (
    "NAME",
    "name",
    "NAME20",
    "NAME10",
    "NAMELSAD",
    "NAMELSAD20",
    "NAMELSAD10",
    "Name",
)

#: Candidate state fields.
STATE_FIELDS: tuple[str, ...] = (
    "STATEFP",
    "STATEFP20",
    "STATEFP10",
    "statefp",
    "STATE",
    "state",
    "STUSPS",
    "state_fips",
)


def is_missing(value: Any) -> bool:
    """Return True for None, NaN and pandas' missing-value markers."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, (str, int, list, tuple, dict)):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def guess_code(props: Mapping[str, Any]) -> str | None:
    """Best-effort unit code of a raw feature, used to label parse problems."""
    for name in CODE_FIELDS:
        if name in props and not is_missing(props[name]):
            return str(props[name]).strip() or None
    return None
