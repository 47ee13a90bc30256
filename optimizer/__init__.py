"""Pure optimizer library: Problem -> Solution (numpy, networkx, OR-Tools; never FastAPI or SQLAlchemy).

Usage::

    from optimizer import Problem, Rep, Options, solve, check
    sol = solve(Problem(ids, {"workload": pop}, lonlat, edges, reps, Options(tolerance=0.02)))
    report = check(problem, sol.assignment)
"""

from .checker import CheckReport, check
from .clock import Cancelled
from .crowding import CrowdedRegion, crowded_regions
from .precheck import PrecheckReport, precheck
from .problem import Options, Problem, Rep
from .solution import Solution
from .solver import solve

__all__ = [
    "Cancelled",
    "CheckReport",
    "CrowdedRegion",
    "Options",
    "PrecheckReport",
    "Problem",
    "Rep",
    "Solution",
    "check",
    "crowded_regions",
    "precheck",
    "solve",
]
