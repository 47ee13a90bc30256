"""Pure-Python geographic data layer of the territory planner.

Reading polygon files, validating and repairing them into planning units, building unit adjacency
and joining population tables.  This package must not import FastAPI, SQLAlchemy or ``app``.
"""

from .adjacency import Adjacency, build_adjacency
from .demo import demo_counties, synthetic_accounts, synthetic_reps
from .errors import GeodataError, Problem
from .io import RawLayer, read_features
from .population import join_population, read_population_csv
from .units import UnitSet, prepare_units

__all__ = [
    "Adjacency",
    "GeodataError",
    "Problem",
    "RawLayer",
    "UnitSet",
    "build_adjacency",
    "demo_counties",
    "join_population",
    "prepare_units",
    "read_features",
    "read_population_csv",
    "synthetic_accounts",
    "synthetic_reps",
]
