"""Population tables: reading Census-style CSV files and joining them to units."""

from __future__ import annotations

import csv
import io
import math
import os
import re
from pathlib import Path

import numpy as np

from .errors import GeodataError, Problem
from .units import UnitSet

__all__ = ["join_population", "read_population_csv"]

_DIGITS = re.compile(r"\d+")


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _parse_number(text: str) -> float | None:
    t = text.strip().replace(",", "")
    if not t:
        return None
    try:
        f = float(t)
    except ValueError:
        return None
    return f if math.isfinite(f) else None


def read_population_csv(
    path: str | os.PathLike[str],
    *,
    code_column: str,
    value_column: str,
    code_width: int = 5,
    code_pattern: str | None = None,
) -> tuple[dict[str, float], list[Problem]]:
    """Read a code -> population table from a CSV file, keeping codes as text.

    Parameters
    ----------
    path : str or os.PathLike
        CSV file with a header row.  Decoded as UTF-8 (a BOM is ignored), falling back to cp1252.
    code_column : str
        Column holding the unit code.  Census-style values such as ``"ZCTA5 02139"`` or
        ``"8600000US02139"`` are reduced to their last run of digits.
    value_column : str
        Column holding the population.
    code_width : int, default 5
        Expected number of digits of a code.
    code_pattern : str, optional
        Regular expression extracting the code from the code column (its first group, or the whole
        match).  Default: the value itself when it is all digits, else its last run of digits.

    Returns
    -------
    population : dict of str to float
        Population by code.
    problems : list of Problem
        Non-fatal findings: a skipped Census label row (the first data row, when its value is
        non-numeric text and its code cell has no digits, e.g. ``"Geographic Area Name","Total"``).
        ``Problem.index`` is the 1-based CSV line number.

    Raises
    ------
    GeodataError
        When the file cannot be read, a column is missing (the message lists the available columns)
        or any row is rejected: a code with too few digits (lost leading zero, e.g. ``"2139"``), a code
        that cannot be extracted, a non-numeric or negative value, or a duplicate code.  The import
        is all-or-nothing.
    """
    source = str(path)
    try:
        text = _decode(Path(path).read_bytes())
    except OSError as exc:
        raise GeodataError(f"cannot read {source}: {exc}") from exc
    pattern = re.compile(code_pattern) if code_pattern else None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise GeodataError(f"{source} is empty") from None
    except csv.Error as exc:
        raise GeodataError(f"cannot parse {source} as CSV: {exc}") from exc
    header = [h.strip() for h in header]
    missing = [c for c in (code_column, value_column) if c not in header]
    if missing:
        raise GeodataError(
            f"column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)} not found in "
            f"{source}; available columns: {', '.join(header)}"
        )
    ci, vi = header.index(code_column), header.index(value_column)
    values: dict[str, float] = {}
    first_line: dict[str, int] = {}
    problems: list[Problem] = []
    first_data_row = True
    try:
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            is_first, first_data_row = first_data_row, False
            if len(row) <= max(ci, vi):
                problems.append(
                    Problem(
                        line, None, None, "rejected", f"row has {len(row)} fields, expected {len(header)}"
                    )
                )
                continue
            raw_code, raw_value = row[ci].strip(), row[vi].strip()
            value = _parse_number(raw_value)
            if is_first and value is None and raw_value and not _DIGITS.search(raw_code):
                problems.append(
                    Problem(
                        line,
                        None,
                        value_column,
                        "skipped",
                        f"label row skipped ({code_column}={raw_code!r}, {value_column}={raw_value!r})",
                    )
                )
                continue
            code: str | None
            if pattern is not None:
                m = pattern.search(raw_code)
                code = (m.group(1) if m.groups() else m.group(0)) if m else None
            elif raw_code.isdigit():
                code = raw_code
            else:
                runs = _DIGITS.findall(raw_code)
                code = runs[-1] if runs else None
            if not code:
                problems.append(
                    Problem(line, raw_code or None, code_column, "rejected", f"no code found in {raw_code!r}")
                )
                continue
            if len(code) < code_width and code.isdigit():
                problems.append(
                    Problem(
                        line,
                        code,
                        code_column,
                        "rejected",
                        f"code {code!r} has {len(code)} digits, expected {code_width}: the leading zero was "
                        "probably lost (Excel?); write codes as text",
                    )
                )
                continue
            if len(code) != code_width:
                problems.append(
                    Problem(
                        line,
                        code,
                        code_column,
                        "rejected",
                        f"code {code!r} has {len(code)} digits, expected {code_width}",
                    )
                )
                continue
            if value is None:
                problems.append(
                    Problem(line, code, value_column, "rejected", f"population {raw_value!r} is not a number")
                )
                continue
            if value < 0:
                problems.append(
                    Problem(line, code, value_column, "rejected", f"population {raw_value!r} is negative")
                )
                continue
            if code in values:
                problems.append(
                    Problem(
                        line,
                        code,
                        code_column,
                        "rejected",
                        f"duplicate code {code!r}: already on line {first_line[code]}",
                    )
                )
                continue
            values[code] = value
            first_line[code] = line
    except csv.Error as exc:
        raise GeodataError(f"cannot parse {source} as CSV at line {reader.line_num}: {exc}") from exc
    rejected = [p for p in problems if p.action == "rejected"]
    if rejected:
        raise GeodataError(
            f"{len(rejected)} row{'s' if len(rejected) != 1 else ''} of {source} rejected; "
            "nothing was imported",
            problems,
            noun="line",
        )
    return values, problems


def join_population(units: UnitSet, population: dict[str, float]) -> list[Problem]:
    """Set ``units.frame["population"]`` from a code -> population mapping, in place.

    Parameters
    ----------
    units : UnitSet
        Units to update.  Units whose code is not in ``population`` keep their current value.
    population : dict of str to float
        Population by unit code (e.g. from :func:`read_population_csv`).

    Returns
    -------
    list of Problem
        Empty when every unit has a population afterwards, else a single summary
        ``Problem(action="skipped")`` with the count and the first 10 codes without population.
    """
    frame = units.frame
    codes = frame["code"].astype(str).tolist()
    current = frame["population"].to_numpy(dtype=np.float64, copy=True)
    new = np.array([population.get(c, math.nan) for c in codes], dtype=np.float64)
    found = ~np.isnan(new)
    current[found] = new[found]
    frame["population"] = current
    missing = [c for c, v in zip(codes, current, strict=True) if math.isnan(v)]
    if not missing:
        return []
    shown = ", ".join(missing[:10]) + (", ..." if len(missing) > 10 else "")
    return [
        Problem(
            index=None,
            code=None,
            field="population",
            action="skipped",
            reason=f"{len(missing)} of {len(codes)} units have no population value: {shown}",
        )
    ]
