"""The Solution returned by :func:`optimizer.solve` and its JSON-safe form."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["optimal", "feasible", "infeasible", "no_solution"]


def _clean(x: Any) -> Any:
    """JSON-safe copy: NaN/inf become None, floats are rounded to 9 significant digits for stable bytes."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return x
    if isinstance(x, int):
        return int(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return None
        return float(f"{x:.9g}")
    if hasattr(x, "item"):
        return _clean(x.item())
    return x


@dataclass
class Solution:
    """Result of :func:`optimizer.solve`.

    Attributes
    ----------
    status : {"optimal", "feasible", "infeasible", "no_solution"}
        ``optimal`` = proven (gap 0 within CP-SAT tolerance); ``feasible`` = every hard rule holds;
        ``infeasible`` = proven impossible, see ``reasons``; ``no_solution`` = no plan met every hard rule in
        the limits (the best plan found is still returned, with ``violations``).
    reasons : list of str
        Why the request is infeasible (pre-check or solver), empty otherwise.
    assignment : dict
        Unit id -> rep id (``None`` for excluded units). Exactly one owner per unit by construction.
    loads : dict
        Rep id -> measure -> load.
    max_deviation, mean_deviation : dict
        Measure -> fraction (0.02 = 2 %) of target.
    pieces : dict
        Rep id -> number of connected pieces (bridge edges count).
    objective : float
        Workload-weighted km to rep homes (+ disruption weight x moved workload).
    weighted_distance : float
        Sum of workload x km from each unit to its owner's home.
    avg_distance_to_home_km, avg_distance_to_centre_km : float
        Workload-weighted means (the second is independent of homes, for comparing with other methods).
    distance_to_home_km : dict
        Rep id -> workload-weighted mean km from the territory's units to the rep's home (the solver's own
        centre when it chose one; NaN for a territory without workload). A territory far above the others
        belongs to a rep working away from home (see the crowded-region notes).
    polsby_popper : dict
        Rep id -> Polsby-Popper score (when geometry metrics were given).
    moved_units, moved_workload : float or None
        Disruption fractions against ``options.current``.
    lower_bound, gap : float or None
        Lower bound on ``objective`` and the relative gap ``(objective - bound) / objective``.
    bound_note : str
        What the bound relaxes.
    mode : str
        "exact" or "heuristic".
    seed : int
    timings : dict
        Stage -> wall seconds (the only field that varies between identical runs).
    notes : list of str
        Diagnostics (e.g. a wall-clock guard was hit).
    violations : list of str
        Hard-rule violations reported by the independent checker (empty for optimal / feasible).
    """

    status: Status
    reasons: list[str] = field(default_factory=list)
    assignment: dict[str, str | None] = field(default_factory=dict)
    loads: dict[str, dict[str, float]] = field(default_factory=dict)
    max_deviation: dict[str, float] = field(default_factory=dict)
    mean_deviation: dict[str, float] = field(default_factory=dict)
    pieces: dict[str, int] = field(default_factory=dict)
    objective: float | None = None
    weighted_distance: float | None = None
    avg_distance_to_home_km: float | None = None
    avg_distance_to_centre_km: float | None = None
    distance_to_home_km: dict[str, float] = field(default_factory=dict)
    polsby_popper: dict[str, float] = field(default_factory=dict)
    moved_units: float | None = None
    moved_workload: float | None = None
    lower_bound: float | None = None
    gap: float | None = None
    bound_note: str = ""
    mode: str = ""
    seed: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def feasible(self) -> bool:
        return self.status in ("optimal", "feasible")

    def to_dict(self, *, timings: bool = True) -> dict[str, Any]:
        """JSON-safe dict. ``timings=False`` drops wall-clock timings: the rest is identical for the same
        problem and seed, byte for byte once serialised with ``json.dumps(..., sort_keys=True)``."""
        out = {
            "status": self.status,
            "reasons": list(self.reasons),
            "assignment": dict(self.assignment),
            "loads": self.loads,
            "max_deviation": self.max_deviation,
            "mean_deviation": self.mean_deviation,
            "pieces": self.pieces,
            "objective": self.objective,
            "weighted_distance": self.weighted_distance,
            "avg_distance_to_home_km": self.avg_distance_to_home_km,
            "avg_distance_to_centre_km": self.avg_distance_to_centre_km,
            "distance_to_home_km": self.distance_to_home_km,
            "polsby_popper": self.polsby_popper,
            "moved_units": self.moved_units,
            "moved_workload": self.moved_workload,
            "lower_bound": self.lower_bound,
            "gap": self.gap,
            "bound_note": self.bound_note,
            "mode": self.mode,
            "seed": self.seed,
            "notes": list(self.notes),
            "violations": list(self.violations),
            "details": self.details,
        }
        if timings:
            out["timings"] = self.timings
        cleaned: dict[str, Any] = _clean(out)
        return cleaned
