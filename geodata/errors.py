"""Problem reports and the exception raised for input that cannot be imported."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["GeodataError", "Problem"]

#: Allowed values of :attr:`Problem.action`.
ACTIONS = ("repaired", "rejected", "skipped")


@dataclass(frozen=True)
class Problem:
    """One feature- or row-level finding made while importing geographic data.

    Attributes
    ----------
    index : int or None
        0-based feature index in the source file, or the 1-based line number for CSV rows.
        ``None`` for findings about the whole file.
    code : str or None
        Unit code of the feature or row, when it is known.
    field : str or None
        Field the finding is about, e.g. ``"geometry"``, ``"ZCTA5CE10"`` or ``"population"``.
    action : str
        What was done: ``"repaired"``, ``"rejected"`` or ``"skipped"``.
    reason : str
        A human-readable sentence explaining the finding.
    """

    index: int | None
    code: str | None
    field: str | None
    action: str
    reason: str

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"Problem.action must be one of {ACTIONS}, got {self.action!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return the problem as a JSON-safe dictionary.

        Returns
        -------
        dict
            Keys ``index``, ``code``, ``field``, ``action`` and ``reason``.
        """
        return asdict(self)

    def describe(self, noun: str = "feature") -> str:
        """Return a one-line description such as ``feature 3 (06111): rejected: ...``.

        Parameters
        ----------
        noun : str, optional
            What :attr:`index` counts: ``"feature"`` (default) or ``"line"`` for CSV rows.

        Returns
        -------
        str
            The location of the problem followed by its action and reason.
        """
        where = "file" if self.index is None else f"{noun} {self.index}"
        if self.code:
            where += f" ({self.code})"
        return f"{where}: {self.action}: {self.reason}"


def _summarise(problems: list[Problem], noun: str = "feature", limit: int = 5) -> str:
    counts = Counter(p.action for p in problems)
    head = ", ".join(f"{n} {action}" for action, n in sorted(counts.items()))
    lines = [p.describe(noun) for p in problems if p.action == "rejected"][:limit]
    if not lines:
        lines = [p.describe(noun) for p in problems[:limit]]
    more = len(problems) - len(lines)
    text = f"{len(problems)} problem(s) ({head}): " + "; ".join(lines)
    if more > 0:
        text += f"; ... and {more} more"
    return text


class GeodataError(Exception):
    """Input that cannot be imported.

    Parameters
    ----------
    message : str, optional
        Summary of the failure. When omitted, a summary of ``problems`` is used.
    problems : iterable of Problem, optional
        The findings that caused the failure (all of them, including repairs and skips,
        so that a caller can show the full report).
    noun : str, optional
        What a problem's index counts in the summary message: ``"feature"`` or ``"line"``.

    Attributes
    ----------
    problems : list of Problem
        The findings; never empty (a file-level problem is synthesised from the message).
    """

    def __init__(
        self, message: str | None = None, problems: Iterable[Problem] | None = None, *, noun: str = "feature"
    ) -> None:
        self.problems: list[Problem] = list(problems or [])
        if message is None:
            message = _summarise(self.problems, noun) if self.problems else "invalid geographic input"
        elif self.problems and not (len(self.problems) == 1 and self.problems[0].reason in message):
            message = f"{message}: {_summarise(self.problems, noun)}"
        if not self.problems:
            self.problems = [Problem(index=None, code=None, field=None, action="rejected", reason=message)]
        self.message = message
        super().__init__(message)

    @property
    def rejected(self) -> list[Problem]:
        """Problems whose action is ``"rejected"``.

        Returns
        -------
        list of Problem
            The subset of :attr:`problems` that caused the failure.
        """
        return [p for p in self.problems if p.action == "rejected"]

    def to_dict(self) -> dict[str, Any]:
        """Return the error as a JSON-safe dictionary.

        Returns
        -------
        dict
            ``{"message": str, "problems": [Problem.to_dict(), ...]}``.
        """
        return {"message": self.message, "problems": [p.to_dict() for p in self.problems]}
