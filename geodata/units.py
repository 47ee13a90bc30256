"""Validation and repair of raw features into planning units (ZCTAs, counties, custom areas)."""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry

from ._fields import (
    CODE_FIELDS,
    COUNTY_CODE_FIELDS,
    COUNTY_FIPS_PAIRS,
    NAME_FIELDS,
    POPULATION_FIELDS,
    STATE_FIELDS,
    is_missing,
)
from .errors import GeodataError, Problem
from .io import RawLayer

__all__ = ["LEVELS", "UnitSet", "prepare_units"]

#: Supported unit levels.
LEVELS = ("zcta", "county", "custom")

_CODE_WIDTH = {"zcta": 5, "county": 5}
_EQUAL_AREA = "EPSG:6933"
_POLYGON, _MULTIPOLYGON, _COLLECTION = 3, 6, 7
_TYPE_NAMES = {
    0: "Point",
    1: "LineString",
    2: "LinearRing",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}


@dataclass
class UnitSet:
    """Validated planning units.

    Attributes
    ----------
    frame : geopandas.GeoDataFrame
        One row per accepted unit, CRS EPSG:4326, columns ``code`` (str), ``name`` (str or None),
        ``state`` (str or None), ``population`` (float, NaN when unknown), ``attributes`` (dict of the
        remaining source properties, JSON-safe), ``geometry`` (always a MultiPolygon), ``centroid``
        (shapely Point, lon/lat, the true centroid), ``area_km2`` (float, equal-area EPSG:6933) and
        ``source_index`` (0-based index of the feature in the source layer).
    level : str
        ``"zcta"``, ``"county"`` or ``"custom"``.
    problems : list of Problem
        Repairs and rejections (including the reader's parse problems), in feature order.
    code_field : str
        Field the codes came from (``"STATEFP+COUNTYFP"`` when two fields were concatenated).
    name_field, population_field, state_field : str or None
        Fields the names, populations and states came from, ``None`` when absent.
    source : str
        The file the units were read from.
    """

    frame: gpd.GeoDataFrame
    level: str
    problems: list[Problem]
    code_field: str
    name_field: str | None
    population_field: str | None
    state_field: str | None = None
    source: str = ""

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def codes(self) -> list[str]:
        """Unit codes in frame order.

        Returns
        -------
        list of str
            ``frame["code"]`` as a list.
        """
        return [str(c) for c in self.frame["code"]]


# ---------------------------------------------------------------------------------------------------
# value normalisation


def _code_string(value: Any) -> tuple[str, bool]:
    """Return (stripped code string, came-from-a-number)."""
    if is_missing(value):
        return "", False
    if isinstance(value, (bool, np.bool_)):
        return str(value), False
    if isinstance(value, (int, np.integer)):
        return str(int(value)), True
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return (str(int(f)), True) if f.is_integer() else (str(f), True)
    return str(value).strip(), False


def _check_code(code: str, numeric: bool, level: str, field_name: str) -> str | None:
    """Return the rejection reason for a code, or None when it is acceptable."""
    if not code:
        return "empty code"
    width = _CODE_WIDTH.get(level)
    if width is None:
        return None
    if len(code) == width and code.isascii() and code.isdigit():
        return None
    if code.isascii() and code.isdigit() and len(code) < width:
        hint = f"field {field_name!r} is numeric: " if numeric else ""
        return (
            f"{level} code {code!r} has {len(code)} digits, expected {width}: the leading zero was lost "
            f"({hint}store codes as text); codes are never padded automatically"
        )
    return f"{level} code {code!r} is not a {width}-digit code"


def _population_value(value: Any) -> tuple[float, str | None]:
    """Return (population, rejection reason). Missing values are NaN, not errors."""
    if is_missing(value):
        return math.nan, None
    if isinstance(value, (bool, np.bool_)):
        return math.nan, f"population {value!r} is not a number"
    if isinstance(value, (int, float, np.integer, np.floating)):
        f = float(value)
    else:
        text = str(value).strip().replace(",", "")
        if not text:
            return math.nan, None
        try:
            f = float(text)
        except ValueError:
            return math.nan, f"population {str(value)!r:.40} is not a number"
    if not math.isfinite(f):
        return math.nan, f"population {value!r} is not a finite number"
    if f < 0:
        return math.nan, f"population {value!r} is negative"
    return f, None


def json_safe(value: Any) -> Any:
    """Convert a property value to a JSON-serialisable Python value (NaN and NaT become None).

    Parameters
    ----------
    value : Any
        A value from a pandas/pyogrio column or a parsed JSON document.

    Returns
    -------
    Any
        ``None``, ``bool``, ``int``, ``float``, ``str``, ``list`` or ``dict``.
    """
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if is_missing(value):
        return None
    if isinstance(value, (pd.Timestamp, _dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, BaseGeometry):
        return value.wkt
    return str(value)


# ---------------------------------------------------------------------------------------------------
# field detection


def _looks_like_codes(values: pd.Series, width: int) -> bool:
    sample = [v for v in values.head(500) if not is_missing(v)]
    if not sample:
        return False
    ok = 0
    for v in sample:
        s, _ = _code_string(v)
        ok += s.isascii() and s.isdigit() and len(s) <= width
    return ok >= 0.9 * len(sample)


def _resolve_code(
    frame: pd.DataFrame, columns: list[str], level: str, code_field: str | None, source: str
) -> tuple[str, list[tuple[str, bool]]]:
    """Return (code field label, [(code, numeric), ...])."""

    def convert(name: str) -> list[tuple[str, bool]]:
        return [_code_string(v) for v in frame[name].tolist()]

    if code_field is not None:
        if code_field in columns:
            return code_field, convert(code_field)
        if "+" in code_field and all(part in columns for part in code_field.split("+")):
            parts = [convert(part) for part in code_field.split("+")]
            return code_field, [
                ("".join(p[0] for p in row), any(p[1] for p in row)) for row in zip(*parts, strict=True)
            ]
        raise GeodataError(
            f"code field {code_field!r} not found in {source}; "
            f"available fields: {', '.join(columns) or '(none)'}"
        )
    width = _CODE_WIDTH.get(level)
    candidates: list[str] = []
    if level == "county":
        candidates = [c for c in COUNTY_CODE_FIELDS if c in columns]
        pair = next(((s, c) for s, c in COUNTY_FIPS_PAIRS if s in columns and c in columns), None)
        if not candidates and pair is not None:
            return f"{pair[0]}+{pair[1]}", _resolve_code(
                frame, columns, level, f"{pair[0]}+{pair[1]}", source
            )[1]
    candidates += [c for c in CODE_FIELDS if c in columns and c not in candidates]
    if not candidates:
        raise GeodataError(
            f"no unit-code field found in {source}; looked for {', '.join(CODE_FIELDS)}; "
            f"available fields: {', '.join(columns) or '(none)'}; pass code_field=..."
        )
    chosen = candidates[0]
    if width is not None:
        # e.g. 2010 TIGER ZCTA files carry GEOID10 = state + ZCTA (7 digits) before the 5-digit field
        chosen = next((c for c in candidates if _looks_like_codes(frame[c], width)), chosen)
    return chosen, convert(chosen)


def _pick(
    columns: list[str], requested: str | None, candidates: Sequence[str], what: str, source: str
) -> str | None:
    if requested is not None:
        if requested not in columns:
            raise GeodataError(
                f"{what} field {requested!r} not found in {source}; available fields: {', '.join(columns)}"
            )
        return requested
    return next((c for c in candidates if c in columns), None)


# ---------------------------------------------------------------------------------------------------
# geometry


def _is_lonlat(crs_text: str) -> bool:
    crs = pyproj.CRS.from_user_input(crs_text)
    if crs.to_epsg() in (4326, 4269):
        return True
    return bool(crs.equals(pyproj.CRS.from_epsg(4326), ignore_axis_order=True))


def _to_lonlat(geoms: np.ndarray, crs_text: str | None, source: str) -> np.ndarray:
    present = ~shapely.is_missing(geoms)
    if crs_text is None:
        if present.any():
            xmin, ymin, xmax, ymax = shapely.total_bounds(geoms[present])
            if xmin < -180.5 or xmax > 360.5 or ymin < -90.5 or ymax > 90.5:
                raise GeodataError(
                    f"{source} declares no coordinate reference system and its coordinates are not "
                    f"longitude/latitude (bounds {xmin:.1f}, {ymin:.1f}, {xmax:.1f}, {ymax:.1f})"
                )
        return geoms
    try:
        if _is_lonlat(crs_text):
            # NAD83 (EPSG:4269) and WGS84 differ by 1-2 m in CONUS: keep coordinates bit-for-bit so
            # that exactly shared borders stay exactly shared.
            return geoms
        out = np.asarray(gpd.GeoSeries(geoms, crs=crs_text).to_crs("EPSG:4326").to_numpy(), dtype=object)
    except (pyproj.exceptions.CRSError, ValueError) as exc:
        raise GeodataError(f"cannot reproject {source} from {crs_text} to EPSG:4326: {exc}") from exc
    return out


_REASON_LEADS = (
    ("Ring Self-intersection", "self-intersecting polygon"),
    ("Self-intersection", "self-intersecting polygon"),
    ("Too few points", "degenerate polygon"),
    ("Hole lies outside shell", "hole outside its polygon"),
    ("Nested holes", "nested holes"),
    ("Interior is disconnected", "polygon interior is disconnected"),
    ("Nested shells", "overlapping polygon parts"),
    ("Duplicate Rings", "duplicate rings"),
    ("Invalid Coordinate", "invalid coordinate"),
    ("Ring is not closed", "unclosed ring"),
)


def _describe_invalid(reason: str) -> str:
    text = re.sub(r"\[(-?[\d.eE+-]+) (-?[\d.eE+-]+)\]", r" at \1 \2", reason).strip()
    lead = next((human for prefix, human in _REASON_LEADS if reason.startswith(prefix)), "invalid geometry")
    return f"{lead} ({text})"


def _flatten(geom: BaseGeometry) -> list[BaseGeometry]:
    if isinstance(
        geom, (shapely.MultiPolygon, shapely.MultiLineString, shapely.MultiPoint, shapely.GeometryCollection)
    ):
        out: list[BaseGeometry] = []
        for part in geom.geoms:
            out.extend(_flatten(part))
        return out
    return [geom]


def _polygonal(geom: BaseGeometry) -> tuple[shapely.MultiPolygon, Counter[str]]:
    """Split into (MultiPolygon of the non-empty polygon parts, counter of dropped part types)."""
    polys: list[Any] = []
    dropped: Counter[str] = Counter()
    for part in _flatten(geom):
        if isinstance(part, shapely.Polygon):
            if not part.is_empty:
                polys.append(part)
        elif not part.is_empty:
            dropped[part.geom_type] += 1
    return shapely.MultiPolygon(polys), dropped


def _has_polygon(geom: BaseGeometry | None) -> bool:
    if geom is None:
        return False
    return any(isinstance(p, shapely.Polygon) and not p.is_empty for p in _flatten(geom))


def _dropped_text(dropped: Counter[str]) -> str:
    n = sum(dropped.values())
    kinds = ", ".join(f"{k}" for k in sorted(dropped))
    return f"dropped {n} non-polygon part{'s' if n != 1 else ''} ({kinds})"


@dataclass
class _GeomResult:
    geometry: shapely.MultiPolygon | None = None
    repaired: str | None = None
    rejected: str | None = None
    notes: list[str] = field(default_factory=list)


def _repair(geom: BaseGeometry, type_id: int, valid: bool) -> _GeomResult:
    """Validate/repair one geometry (the caller already handled missing geometries)."""
    if geom.is_empty:
        return _GeomResult(rejected="empty geometry")
    if type_id not in (_POLYGON, _MULTIPOLYGON, _COLLECTION):
        return _GeomResult(rejected=f"not a polygon: {_TYPE_NAMES.get(type_id, geom.geom_type)}")
    notes: list[str] = []
    if type_id == _COLLECTION:
        mp, dropped = _polygonal(geom)
        if mp.is_empty:
            kinds = ", ".join(sorted(dropped)) or "empty parts"
            return _GeomResult(rejected=f"not a polygon: GeometryCollection of {kinds}")
        if dropped:
            notes.append(f"GeometryCollection: {_dropped_text(dropped)}")
        geom = mp
        valid = bool(shapely.is_valid(geom))
    if not valid:
        why = _describe_invalid(str(shapely.is_valid_reason(geom)))
        fixed = shapely.make_valid(geom)
        mp, dropped = _polygonal(fixed)
        if not mp.is_valid:  # polygon parts of a collection can overlap: dissolve them
            mp, more = _polygonal(shapely.make_valid(shapely.union_all(list(mp.geoms))))
            dropped.update(more)
        if mp.is_empty:
            return _GeomResult(rejected=f"{why}; no polygonal area left after make_valid")
        action = "repaired with make_valid"
        if dropped:
            action += f", {_dropped_text(dropped)}"
        notes.append(f"{why}; {action}")
        geom = mp
    if isinstance(geom, shapely.Polygon):
        geom = shapely.MultiPolygon([geom])
    if not isinstance(geom, shapely.MultiPolygon):  # pragma: no cover - guarded by the type checks above
        return _GeomResult(rejected=f"not a polygon: {geom.geom_type}")
    out = geom
    return _GeomResult(geometry=out, repaired="; ".join(notes) if notes else None)


# ---------------------------------------------------------------------------------------------------
# main entry point


def prepare_units(
    raw: RawLayer,
    *,
    level: str,
    code_field: str | None = None,
    name_field: str | None = None,
    state_field: str | None = None,
    population_field: str | None = None,
    strict: bool = False,
    allow_rejects: bool = False,
) -> UnitSet:
    """Validate, repair and normalise raw features into planning units.

    Parameters
    ----------
    raw : RawLayer
        Features from :func:`geodata.read_features`.
    level : {"zcta", "county", "custom"}
        Unit level.  ZCTA and county codes must be exactly 5 digits.
    code_field : str, optional
        Field holding the unit code.  Autodetected when omitted: the first present of
        ZCTA5CE20, ZCTA5CE10, GEOID20, GEOID10, GEOID, geoid, ZCTA5, zcta, ZIP, zip, FIPS, fips, code, id,
        skipping (for ``zcta``/``county``) fields whose values are longer than 5 digits, such as the
        7-digit state+ZCTA ``GEOID10`` of 2010 TIGER files.  For counties GEOID/geoid/FIPS are preferred,
        then ``STATEFP`` + ``COUNTYFP`` concatenated.  ``"A+B"`` concatenates two fields.
    name_field, state_field : str, optional
        Fields for the display name and the state; autodetected (``NAME``, ``STATEFP``...) when omitted.
    population_field : str, optional
        Population field; autodetected among population, POPULATION, pop, POP, TOTPOP, pop2020,
        pop2010, pop2019_est, POP2010, P001001 when omitted.  Missing values become NaN; non-numeric
        or negative values reject the feature.
    strict : bool, default False
        Treat every geometry repair as a rejection.
    allow_rejects : bool, default False
        Drop rejected features (listing them in ``problems``) instead of raising.

    Returns
    -------
    UnitSet
        Accepted units in source order and the list of problems.

    Raises
    ------
    GeodataError
        Unknown level, missing code field, no polygon features at all, or any rejected feature
        (including the reader's ``parse_problems``) when ``allow_rejects`` is False.  The error's
        ``problems`` lists every finding in feature order.

    Notes
    -----
    Geometries are reprojected to EPSG:4326 when the layer declares another CRS (NAD83, EPSG:4269, is
    treated as equivalent and left untouched).  Invalid polygons are repaired with ``shapely.make_valid``
    keeping only polygonal parts; non-polygon geometries are rejected.  Codes are never padded: a
    4-digit ZIP such as ``2139`` is rejected because its leading zero was lost upstream.
    """
    if level not in LEVELS:
        raise GeodataError(f"unknown unit level {level!r}; expected one of {', '.join(LEVELS)}")
    frame = raw.frame
    source = raw.source
    n = len(frame)
    geom_name = frame.geometry.name
    columns = [str(c) for c in frame.columns if c != geom_name]
    if n == 0:
        raise GeodataError(f"no features in {source}")

    geoms = np.asarray(frame.geometry.to_numpy(), dtype=object)
    type_ids = shapely.get_type_id(geoms)
    if not any(_has_polygon(g) for g in geoms[np.isin(type_ids, (_POLYGON, _MULTIPOLYGON, _COLLECTION))]):
        kinds = Counter(_TYPE_NAMES.get(int(t), "unknown") for t in type_ids if t >= 0)
        found = [f"{k} {name} feature{'s' if k != 1 else ''}" for name, k in sorted(kinds.items())]
        nulls = int((type_ids < 0).sum())
        if nulls:
            found.append(f"{nulls} null geometr{'ies' if nulls != 1 else 'y'}")
        raise GeodataError(
            f"no polygon features in {source}: found {', '.join(found) or 'nothing'}",
            raw.parse_problems or None,
        )

    code_label, code_values = _resolve_code(frame, columns, level, code_field, source)
    name_col = _pick(columns, name_field, NAME_FIELDS, "name", source)
    state_col = _pick(columns, state_field, STATE_FIELDS, "state", source)
    pop_col = _pick(columns, population_field, POPULATION_FIELDS, "population", source)
    crs_text = raw.crs if raw.crs is not None else (frame.crs.to_string() if frame.crs is not None else None)
    geoms = _to_lonlat(geoms, crs_text, source)
    valid = shapely.is_valid(geoms)

    problems: list[Problem] = list(raw.parse_problems)
    parse_rejected = {p.index for p in raw.parse_problems if p.action == "rejected" and p.index is not None}
    rejected = np.zeros(n, dtype=bool)
    rejected[[i for i in parse_rejected if 0 <= i < n]] = True
    out_geoms: list[shapely.MultiPolygon | None] = [None] * n
    populations = np.full(n, np.nan)
    pop_raw = frame[pop_col].tolist() if pop_col else None
    code_fields = code_label.split("+") if "+" in code_label and code_label not in columns else [code_label]
    first_seen: dict[str, int] = {}

    for i in range(n):
        code, numeric = code_values[i]
        label = code or None

        def reject(reason: str, fld: str | None, _i: int = i, _label: str | None = label) -> None:
            problems.append(Problem(_i, _label, fld, "rejected", reason))
            rejected[_i] = True

        why = _check_code(code, numeric, level, code_label)
        if why is not None:
            reject(why, code_label)
        if pop_raw is not None:
            value, why = _population_value(pop_raw[i])
            if why is not None:
                reject(why, pop_col)
            populations[i] = value
        g = geoms[i]
        if g is None:
            if i not in parse_rejected:
                reject("geometry is missing", "geometry")
        else:
            res = _repair(g, int(type_ids[i]), bool(valid[i]))
            if res.rejected is not None:
                reject(res.rejected, "geometry")
            elif res.repaired is not None:
                if strict:
                    reject(
                        f"{res.repaired} (strict=True: repairs are not accepted, so the feature is rejected)",
                        "geometry",
                    )
                else:
                    problems.append(Problem(i, label, "geometry", "repaired", res.repaired))
            out_geoms[i] = res.geometry
        if not rejected[i]:
            if code in first_seen:
                reject(
                    f"duplicate code {code!r}: features {first_seen[code]} and {i} have the same code",
                    code_label,
                )
            else:
                first_seen[code] = i

    problems.sort(key=lambda p: -1 if p.index is None else p.index)  # stable: feature order
    n_rejected = int(rejected.sum())
    if n_rejected and not allow_rejects:
        raise GeodataError(
            f"{n_rejected} of {n} feature{'s' if n != 1 else ''} in {source} rejected "
            "(pass allow_rejects=True to drop them)",
            problems,
        )
    kept = np.flatnonzero(~rejected)
    if kept.size == 0:
        raise GeodataError(f"every feature of {source} was rejected", problems)

    used = set(code_fields) | {c for c in (name_col, state_col, pop_col) if c}
    attr_cols = [c for c in columns if c not in used]
    attr_frame = frame.iloc[kept][attr_cols]
    attributes = [
        {str(k): json_safe(v) for k, v in zip(attr_cols, row, strict=True)}
        for row in attr_frame.itertuples(index=False, name=None)
    ]

    def text_column(col: str | None) -> list[str | None]:
        if col is None:
            return [None] * len(kept)
        vals = frame[col].tolist()
        out: list[str | None] = []
        for i in kept:
            s, _ = _code_string(vals[i])
            out.append(s or None)
        return out

    mp = np.empty(len(kept), dtype=object)
    mp[:] = [out_geoms[i] for i in kept]
    geometry = gpd.GeoSeries(mp, crs="EPSG:4326")
    result = gpd.GeoDataFrame(
        {
            "code": [code_values[i][0] for i in kept],
            "name": text_column(name_col),
            "state": text_column(state_col),
            "population": populations[kept],
            "attributes": attributes,
        },
        geometry=geometry,
        crs="EPSG:4326",
    )
    result["centroid"] = gpd.GeoSeries(shapely.centroid(mp), crs="EPSG:4326")
    result["area_km2"] = geometry.to_crs(_EQUAL_AREA).area.to_numpy() / 1e6
    result["source_index"] = kept.astype(np.int64)
    result["code"] = result["code"].astype(object)
    return UnitSet(
        frame=result,
        level=level,
        problems=problems,
        code_field=code_label,
        name_field=name_col,
        population_field=pop_col,
        state_field=state_col,
        source=source,
    )
