"""Great-circle geometry for the solver: haversine distances and nearest-home candidate arcs."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

EARTH_RADIUS_KM = 6371.0088


def unit_vectors(lonlat: np.ndarray) -> np.ndarray:
    """Points on the unit sphere for (n, 2) lon/lat degrees (chord order equals great-circle order)."""
    lon = np.radians(lonlat[:, 0])
    lat = np.radians(lonlat[:, 1])
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def haversine_km(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Great-circle distance in km between lon/lat arrays ``a`` and ``b`` (broadcasting, last axis 2)."""
    lon1, lat1 = np.radians(a[..., 0]), np.radians(a[..., 1])
    lon2, lat2 = np.radians(b[..., 0]), np.radians(b[..., 1])
    h = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def lonlat_of(xyz: np.ndarray) -> np.ndarray:
    """Lon/lat degrees of a point on the unit sphere (the inverse of :func:`unit_vectors` for one point)."""
    return np.degrees([np.arctan2(xyz[1], xyz[0]), np.arcsin(np.clip(xyz[2], -1.0, 1.0))])


def spherical_centre(xyz: np.ndarray, w: np.ndarray) -> np.ndarray | None:
    """The ``w``-weighted centroid of unit vectors ``xyz`` projected onto the sphere (None if undefined)."""
    v = (w[:, None] * xyz).sum(0)
    nv = float(np.linalg.norm(v))
    return v / nv if nv > 0 else None


def nearest_homes(lonlat: np.ndarray, homes: np.ndarray, k: int) -> np.ndarray:
    """Indices (n, k) of the ``k`` nearest homes of every unit, nearest first (ties by index)."""
    k = min(k, len(homes))
    tree = cKDTree(unit_vectors(homes))
    _, idx = tree.query(unit_vectors(lonlat), k=k)
    return np.asarray(idx, dtype=np.int64).reshape(len(lonlat), k)
