"""Reading polygon layers: GeoJSON, TopoJSON, (zipped) Shapefile and GeoPackage.

GeoJSON is parsed by our own code (orjson + shapely) so that every bad feature is reported by its
index instead of being silently fixed or dropped by GDAL.  The other formats are read with
``pyogrio``; TopoJSON falls back to a built-in arc decoder when GDAL cannot read the file.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import pyogrio
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry

from ._fields import guess_code
from .errors import GeodataError, Problem

__all__ = ["RawLayer", "read_features"]

_GEOJSON_GEOMETRY_TYPES = {
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
}


@dataclass
class RawLayer:
    """Features as read from a file, before validation.

    Attributes
    ----------
    frame : geopandas.GeoDataFrame
        One row per source feature, in file order (row ``i`` is feature ``i``).  The geometry column
        contains ``None`` for features whose geometry is null or failed to parse.
    source : str
        The path that was read.
    driver : str
        ``"GeoJSON"``, ``"TopoJSON"``, ``"ESRI Shapefile"``, ``"GPKG"`` or another GDAL driver name.
    crs : str or None
        The declared coordinate reference system (e.g. ``"EPSG:4269"``), ``None`` when unknown.
    parse_problems : list of Problem
        Features rejected while parsing (NaN coordinate, unclosed ring, unknown type, null geometry...).
    """

    frame: gpd.GeoDataFrame
    source: str
    driver: str
    crs: str | None
    parse_problems: list[Problem] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frame)


def _file_error(path: str, reason: str) -> GeodataError:
    message = f"cannot read {path}: {reason}"
    return GeodataError(
        message, [Problem(index=None, code=None, field=None, action="rejected", reason=message)]
    )


def read_features(path: str | os.PathLike[str], *, layer: str | None = None) -> RawLayer:
    """Read the features of a polygon file without validating them.

    Parameters
    ----------
    path : str or os.PathLike
        A GeoJSON (``.geojson``/``.json``), TopoJSON (``.topojson``, or ``.json`` whose top-level
        ``type`` is ``"Topology"``), zipped Shapefile (``.zip``), Shapefile (``.shp``) or GeoPackage
        (``.gpkg``) file.  FlatGeobuf (``.fgb``) is read through GDAL as well.
    layer : str, optional
        Layer to read: a GeoPackage layer, a TopoJSON object, or the stem of a ``.shp`` inside a zip
        that holds several.  Default: the first layer with geometries (GeoPackage), all objects merged
        (TopoJSON), the only shapefile (zip).  Ignored for GeoJSON.

    Returns
    -------
    RawLayer
        The features in file order, with ``parse_problems`` for features that could not be parsed.

    Raises
    ------
    GeodataError
        When the file cannot be read at all (missing, unsupported type, corrupt).  The error has a
        single ``Problem(index=None, ...)`` naming the file and the reason.
    """
    p = Path(path)
    source = str(path)
    if not p.exists():
        raise _file_error(source, "no such file")
    if p.is_dir():
        raise _file_error(source, "is a directory, expected a file")
    suffix = p.suffix.lower()
    if suffix in (".geojson", ".json"):
        return _read_json_file(p, source, layer)
    if suffix == ".topojson":
        return _read_topojson(p, source, layer)
    if suffix == ".zip":
        return _read_zip(p, source, layer)
    if suffix in (".shp", ".gpkg", ".fgb"):
        return _read_ogr(str(p), source, layer)
    raise _file_error(
        source,
        f"unsupported file type {suffix or '(no extension)'!r}; expected .geojson, .json, .topojson, "
        ".zip (zipped shapefile), .shp or .gpkg",
    )


# ---------------------------------------------------------------------------------------------------
# JSON loading


def _load_json(data: bytes, source: str) -> Any:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as fast_exc:
        # orjson rejects the NaN / Infinity tokens that some writers emit; the stdlib accepts them,
        # so the bad coordinates can be reported feature by feature instead of failing the file.
        try:
            return json.loads(data.decode("utf-8", errors="strict"))
        except UnicodeDecodeError as exc:
            raise _file_error(source, f"not UTF-8 text ({exc})") from exc
        except ValueError as exc:
            raise _file_error(source, f"invalid JSON ({exc})") from fast_exc


def _read_json_file(p: Path, source: str, layer: str | None) -> RawLayer:
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise _file_error(source, str(exc)) from exc
    obj = _load_json(data, source)
    if isinstance(obj, dict) and obj.get("type") == "Topology":
        return _read_topojson(p, source, layer, parsed=obj)
    return _geojson_to_layer(obj, source)


def _crs_from_geojson(obj: dict[str, Any], source: str) -> str:
    crs = obj.get("crs")
    if not crs:
        return "EPSG:4326"  # RFC 7946: WGS84 longitude/latitude
    name = None
    if isinstance(crs, dict):
        props = crs.get("properties") or {}
        name = props.get("name") if isinstance(props, dict) else None
    if not name:
        raise _file_error(source, f"unsupported 'crs' member {crs!r}")
    try:
        return str(pyproj.CRS.from_user_input(name).to_string())
    except pyproj.exceptions.CRSError as exc:
        raise _file_error(source, f"unknown CRS {name!r} ({exc})") from exc


def _geojson_to_layer(obj: Any, source: str) -> RawLayer:
    if not isinstance(obj, dict):
        raise _file_error(
            source, f"top-level JSON value is a {type(obj).__name__}, expected a GeoJSON object"
        )
    kind = obj.get("type")
    if kind == "FeatureCollection":
        features = obj.get("features")
        if not isinstance(features, list):
            raise _file_error(source, "FeatureCollection has no 'features' array")
    elif kind == "Feature":
        features = [obj]
    elif kind in _GEOJSON_GEOMETRY_TYPES:
        features = [{"type": "Feature", "properties": {}, "geometry": obj}]
    else:
        raise _file_error(source, f"not GeoJSON: top-level type is {kind!r}")
    crs = _crs_from_geojson(obj, source)
    return _features_to_layer(features, source=source, driver="GeoJSON", crs=crs)


def _features_to_layer(
    features: Sequence[Any],
    *,
    source: str,
    driver: str,
    crs: str | None,
    extra: dict[str, list[Any]] | None = None,
) -> RawLayer:
    records: list[dict[str, Any]] = []
    geoms: list[BaseGeometry | None] = []
    problems: list[Problem] = []
    ids: list[Any] = []
    for i, feat in enumerate(features):
        if not isinstance(feat, dict):
            records.append({})
            geoms.append(None)
            ids.append(None)
            problems.append(
                Problem(
                    i, None, None, "rejected", f"feature is a {type(feat).__name__}, not a GeoJSON object"
                )
            )
            continue
        props = feat.get("properties")
        props = dict(props) if isinstance(props, dict) else {}
        if "geometry" in props:
            props["properties.geometry"] = props.pop("geometry")
        records.append(props)
        ids.append(feat.get("id"))
        code = guess_code(props)
        geom_obj = feat.get("geometry")
        if geom_obj is None:
            geoms.append(None)
            problems.append(Problem(i, code, "geometry", "rejected", "geometry is null"))
            continue
        try:
            geoms.append(_parse_geometry(geom_obj))
        except _BadGeometry as exc:
            geoms.append(None)
            problems.append(Problem(i, code, "geometry", "rejected", f"invalid geometry: {exc}"))
    df = pd.DataFrame.from_records(records, index=pd.RangeIndex(len(records))) if records else pd.DataFrame()
    if "id" not in df.columns and any(v is not None for v in ids):
        df["id"] = ids
    for name, values in (extra or {}).items():
        df[name] = values
    frame = gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms, index=df.index, crs=crs), crs=crs)
    return RawLayer(frame=frame, source=source, driver=driver, crs=crs, parse_problems=problems)


# ---------------------------------------------------------------------------------------------------
# GeoJSON geometry parsing


class _BadGeometry(ValueError):
    """A geometry that cannot be built; the message is the reason."""


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _positions(coords: Any, where: str) -> np.ndarray:
    """Validate a list of positions and return an (n, 2) float array (Z/M dropped)."""
    if not isinstance(coords, list):
        raise _BadGeometry(f"{where} is not an array of positions")
    arr: np.ndarray | None
    try:
        arr = np.asarray(coords)
    except (ValueError, TypeError):
        arr = None  # ragged: positions of different dimensions
    if arr is None or arr.ndim != 2 or arr.dtype.kind not in "iuf" or arr.shape[1] < 2:
        out = np.empty((len(coords), 2), dtype=np.float64)
        for k, pos in enumerate(coords):
            if not isinstance(pos, list) or len(pos) < 2:
                raise _BadGeometry(f"position {k} of {where} is not an [x, y] array: {pos!r:.60}")
            if not (_is_number(pos[0]) and _is_number(pos[1])):
                raise _BadGeometry(f"position {k} of {where} has a non-numeric coordinate: {pos!r:.60}")
            out[k, 0] = pos[0]
            out[k, 1] = pos[1]
        arr = out
    else:
        arr = np.ascontiguousarray(arr[:, :2], dtype=np.float64)
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        k = int(np.argmin(finite))
        raise _BadGeometry(
            f"position {k} of {where} has a non-finite coordinate ({arr[k, 0]!r}, {arr[k, 1]!r}) "
            "(NaN or infinity)"
        )
    return arr


def _ring(coords: Any, where: str) -> np.ndarray:
    arr = _positions(coords, where)
    if len(arr) < 4:
        raise _BadGeometry(f"{where} has {len(arr)} positions; a polygon ring needs at least 4")
    if not np.array_equal(arr[0], arr[-1]):
        raise _BadGeometry(
            f"{where} is not closed: first position ({arr[0, 0]:.6f}, {arr[0, 1]:.6f}) differs from "
            f"last position ({arr[-1, 0]:.6f}, {arr[-1, 1]:.6f})"
        )
    return arr


def _polygon(coords: Any, where: str) -> shapely.Polygon:
    if not isinstance(coords, list):
        raise _BadGeometry(f"{where or 'Polygon'} coordinates are not an array of rings")
    if not coords:
        return shapely.Polygon()
    rings = [
        _ring(r, f"{'exterior ring' if k == 0 else f'hole {k}'}{' of ' + where if where else ''}".strip())
        for k, r in enumerate(coords)
    ]
    return shapely.Polygon(rings[0], rings[1:])


def _parse_geometry(g: Any, depth: int = 0) -> BaseGeometry:
    if not isinstance(g, dict):
        raise _BadGeometry(f"geometry is a {type(g).__name__}, not a GeoJSON object")
    kind = g.get("type")
    if kind not in _GEOJSON_GEOMETRY_TYPES:
        raise _BadGeometry(f"unknown geometry type {kind!r}")
    if kind == "GeometryCollection":
        members = g.get("geometries")
        if not isinstance(members, list):
            raise _BadGeometry("GeometryCollection has no 'geometries' array")
        if depth > 8:
            raise _BadGeometry("GeometryCollection nested too deeply")
        return shapely.GeometryCollection([_parse_geometry(m, depth + 1) for m in members])
    coords = g.get("coordinates")
    if coords is None:
        raise _BadGeometry(f"{kind} has no coordinates")
    if kind == "Polygon":
        return _polygon(coords, "")
    if kind == "MultiPolygon":
        if not isinstance(coords, list):
            raise _BadGeometry("MultiPolygon coordinates are not an array of polygons")
        parts = [_polygon(c, f"polygon {k}") for k, c in enumerate(coords)]
        return shapely.MultiPolygon([q for q in parts if not q.is_empty]) if parts else shapely.MultiPolygon()
    if kind == "Point":
        if not isinstance(coords, list):
            raise _BadGeometry("Point coordinates are not an array")
        if not coords:
            return shapely.Point()
        return shapely.Point(_positions([coords], "point")[0])
    if kind == "MultiPoint":
        return shapely.MultiPoint(_positions(coords, "multipoint"))
    if kind == "LineString":
        arr = _positions(coords, "line")
        if len(arr) == 1:
            raise _BadGeometry("LineString has a single position")
        return shapely.LineString(arr)
    # MultiLineString
    if not isinstance(coords, list):
        raise _BadGeometry("MultiLineString coordinates are not an array of lines")
    return shapely.MultiLineString([_positions(c, f"line {k}") for k, c in enumerate(coords)])


# ---------------------------------------------------------------------------------------------------
# TopoJSON


def _read_topojson(p: Path, source: str, layer: str | None, parsed: Any = None) -> RawLayer:
    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(str(p))]
        if layer is not None:
            if layer not in layers:
                raise _file_error(source, f"TopoJSON has no object {layer!r}; objects: {', '.join(layers)}")
            layers = [layer]
        frames = [pyogrio.read_dataframe(str(p), layer=name) for name in layers]
    except GeodataError:
        raise
    except Exception:  # GDAL could not decode it: use our own arc decoder
        if parsed is None:
            parsed = _load_json(p.read_bytes(), source)
        return decode_topojson(parsed, source=source, layer=layer)
    if len(frames) > 1:
        for name, fr in zip(layers, frames, strict=True):
            fr["topojson_object"] = name
        df = pd.concat(frames, ignore_index=True)
    else:
        df = frames[0].reset_index(drop=True)
    if "id" in df.columns and df["id"].isna().all():
        df = df.drop(columns="id")
    frame = gpd.GeoDataFrame(df, geometry="geometry", crs=None)
    return RawLayer(
        frame=frame, source=source, driver="TopoJSON", crs=None, parse_problems=_null_geometry_problems(frame)
    )


def decode_topojson(topology: Any, *, source: str = "<topojson>", layer: str | None = None) -> RawLayer:
    """Decode a parsed TopoJSON topology without GDAL.

    Parameters
    ----------
    topology : dict
        The parsed TopoJSON document (``{"type": "Topology", "arcs": ..., "objects": ...}``).
    source : str, optional
        Name used in problem reports.
    layer : str, optional
        The object to decode; default all objects, merged in document order.

    Returns
    -------
    RawLayer
        Features in object order with ``driver="TopoJSON"`` and ``crs=None``.
    """
    if not isinstance(topology, dict) or topology.get("type") != "Topology":
        raise _file_error(source, "not a TopoJSON Topology")
    objects = topology.get("objects")
    if not isinstance(objects, dict) or not objects:
        raise _file_error(source, "TopoJSON has no objects")
    if layer is not None:
        if layer not in objects:
            raise _file_error(source, f"TopoJSON has no object {layer!r}; objects: {', '.join(objects)}")
        objects = {layer: objects[layer]}
    arcs = _decode_arcs(topology, source)
    transform = topology.get("transform")
    features: list[dict[str, Any]] = []
    object_names: list[str] = []
    for name, obj in objects.items():
        members = obj.get("geometries", []) if obj.get("type") == "GeometryCollection" else [obj]
        for g in members:
            props = g.get("properties") if isinstance(g, dict) else None
            feat: dict[str, Any] = {"type": "Feature", "properties": props or {}}
            if isinstance(g, dict) and "id" in g:
                feat["id"] = g["id"]
            try:
                feat["geometry"] = _topo_geometry(g, arcs, transform)
            except _BadGeometry as exc:
                feat["geometry"] = {"type": "__bad__", "reason": str(exc)}
            features.append(feat)
            object_names.append(name)
    extra = {"topojson_object": object_names} if len(objects) > 1 else None
    out = _features_to_layer(features, source=source, driver="TopoJSON", crs=None, extra=extra)
    # replace the generic "unknown geometry type" message of arc-decoding failures by the real reason
    fixed: list[Problem] = []
    for prob in out.parse_problems:
        g = features[prob.index]["geometry"] if prob.index is not None else None
        if isinstance(g, dict) and g.get("type") == "__bad__":
            prob = Problem(prob.index, prob.code, prob.field, prob.action, f"invalid geometry: {g['reason']}")
        fixed.append(prob)
    out.parse_problems = fixed
    return out


def _decode_arcs(topology: dict[str, Any], source: str) -> list[np.ndarray]:
    transform = topology.get("transform")
    raw_arcs = topology.get("arcs") or []
    out: list[np.ndarray] = []
    for k, arc in enumerate(raw_arcs):
        try:
            a = np.asarray([pos[:2] for pos in arc], dtype=np.float64).reshape(-1, 2)
        except (TypeError, ValueError) as exc:
            raise _file_error(source, f"arc {k} is malformed ({exc})") from exc
        if transform:
            a = (
                np.cumsum(a, axis=0) * np.asarray(transform["scale"], dtype=np.float64)[:2]
                + np.asarray(transform["translate"], dtype=np.float64)[:2]
            )
        out.append(a)
    return out


def _topo_line(indices: Any, arcs: list[np.ndarray]) -> list[list[float]]:
    if not isinstance(indices, list):
        raise _BadGeometry("arc list is not an array")
    pieces: list[np.ndarray] = []
    for n, i in enumerate(indices):
        j = ~i if isinstance(i, int) and i < 0 else i
        if not isinstance(j, int) or isinstance(j, bool) or j >= len(arcs):
            raise _BadGeometry(f"arc index {i!r} out of range")
        a = arcs[j][::-1] if j != i else arcs[j]
        pieces.append(a if n == 0 else a[1:])
    return np.concatenate(pieces).tolist() if pieces else []


def _topo_polygon(rings: Any, arcs: list[np.ndarray]) -> list[list[list[float]]]:
    """Decode the rings of one polygon.

    Quantisation can collapse a small ring to an out-and-back line (fewer than 4 positions, no area).
    Like GDAL, such rings are dropped; a collapsed exterior ring leaves an empty polygon.
    """
    if not isinstance(rings, list):
        raise _BadGeometry("polygon arcs are not an array of rings")
    decoded = [_topo_line(r, arcs) for r in rings]
    if not decoded or len(decoded[0]) < 4:
        return []
    return [decoded[0]] + [r for r in decoded[1:] if len(r) >= 4]


def _topo_point(pos: Any, transform: Any) -> list[float]:
    if transform:
        return [
            pos[0] * transform["scale"][0] + transform["translate"][0],
            pos[1] * transform["scale"][1] + transform["translate"][1],
        ]
    return list(pos)


def _topo_geometry(g: Any, arcs: list[np.ndarray], transform: Any) -> dict[str, Any] | None:
    if not isinstance(g, dict):
        raise _BadGeometry(f"geometry is a {type(g).__name__}")
    kind = g.get("type")
    if kind is None:
        return None
    a = g.get("arcs")
    if kind == "Polygon":
        return {"type": kind, "coordinates": _topo_polygon(a, arcs)}
    if kind == "MultiPolygon":
        polys = [_topo_polygon(poly, arcs) for poly in a or []]
        return {"type": kind, "coordinates": [p for p in polys if p]}
    if kind == "LineString":
        return {"type": kind, "coordinates": _topo_line(a, arcs)}
    if kind == "MultiLineString":
        return {"type": kind, "coordinates": [_topo_line(r, arcs) for r in a or []]}
    if kind == "Point":
        return {"type": kind, "coordinates": _topo_point(g.get("coordinates"), transform)}
    if kind == "MultiPoint":
        return {"type": kind, "coordinates": [_topo_point(c, transform) for c in g.get("coordinates") or []]}
    if kind == "GeometryCollection":
        return {
            "type": kind,
            "geometries": [_topo_geometry(m, arcs, transform) for m in g.get("geometries", [])],
        }
    raise _BadGeometry(f"unknown geometry type {kind!r}")


# ---------------------------------------------------------------------------------------------------
# GDAL-based formats


def _null_geometry_problems(frame: gpd.GeoDataFrame) -> list[Problem]:
    problems = []
    missing = np.flatnonzero(shapely.is_missing(np.asarray(frame.geometry.values, dtype=object)))
    for i in missing:
        row = frame.iloc[int(i)]
        code = guess_code({k: row[k] for k in frame.columns if k != frame.geometry.name})
        problems.append(
            Problem(int(i), code, "geometry", "rejected", "geometry is null or could not be read")
        )
    return problems


def _read_zip(p: Path, source: str, layer: str | None) -> RawLayer:
    try:
        with zipfile.ZipFile(p) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise _file_error(source, f"not a readable zip archive ({exc})") from exc
    shps = [
        n
        for n in names
        if n.lower().endswith(".shp") and not n.startswith("__MACOSX/") and not Path(n).name.startswith("._")
    ]
    if layer is not None:
        shps = [n for n in shps if Path(n).stem == layer or n == layer]
        if not shps:
            raise _file_error(source, f"zip archive has no shapefile named {layer!r}")
    if not shps:
        raise _file_error(source, "zip archive contains no .shp file")
    if len(shps) > 1:
        raise _file_error(
            source,
            f"zip archive contains {len(shps)} shapefiles ({', '.join(shps)}); pass layer=<name> to pick one",
        )
    return _read_ogr(f"/vsizip/{p.resolve()}/{shps[0]}", source, None)


def _read_ogr(gdal_path: str, source: str, layer: str | None) -> RawLayer:
    try:
        if layer is None:
            spatial = [str(name) for name, gtype in pyogrio.list_layers(gdal_path) if gtype is not None]
            layer = spatial[0] if spatial else None
        info = pyogrio.read_info(gdal_path, layer=layer)
        df = pyogrio.read_dataframe(gdal_path, layer=layer)
    except Exception as exc:  # pyogrio raises several GDAL error types
        raise _file_error(source, f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(df, gpd.GeoDataFrame):
        raise _file_error(source, "layer has no geometry column")
    df = df.reset_index(drop=True)
    crs = df.crs.to_string() if df.crs is not None else None
    return RawLayer(
        frame=df,
        source=source,
        driver=str(info.get("driver") or "OGR"),
        crs=crs,
        parse_problems=_null_geometry_problems(df),
    )
