"""Match a file's columns to our fields: an explicit mapping first, then column-name aliases."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.services.ingest.errors import RowIssue
from app.services.ingest.readers import GEOMETRY_LAT, GEOMETRY_LON
from app.services.ingest.specs import KindSpec, normalise_header


@dataclass
class ColumnMap:
    """Which header index feeds each field; unknown columns; header-level errors and warnings."""

    indices: dict[str, int] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    errors: list[RowIssue] = field(default_factory=list)
    warnings: list[RowIssue] = field(default_factory=list)

    @property
    def present(self) -> set[str]:
        return set(self.indices)


def resolve(kind: KindSpec, header: list[str], mapping: dict[str, str] | None) -> ColumnMap:
    """Resolve ``header`` for ``kind``; ``mapping`` is {our_field: their_column}, exact column names."""
    result = ColumnMap()
    by_name: dict[str, list[int]] = {}
    for index, name in enumerate(header):
        by_name.setdefault(name, []).append(index)
    used: set[int] = set()

    for our, theirs in (mapping or {}).items():
        if our not in kind.field_names:
            result.errors.append(
                RowIssue(
                    row=1,
                    field=our,
                    column=theirs,
                    message=f"mapping names unknown field {our!r}; {kind.name} fields: "
                    + ", ".join(kind.field_names),
                )
            )
            continue
        if not isinstance(theirs, str) or theirs not in by_name:
            result.errors.append(
                RowIssue(
                    row=1,
                    field=our,
                    column=str(theirs),
                    message=f"mapping maps {our!r} to column {theirs!r}, which is not in the file",
                )
            )
            continue
        if len(by_name[theirs]) > 1:
            result.errors.append(
                RowIssue(row=1, field=our, column=theirs, message=f"column {theirs!r} appears more than once")
            )
            continue
        result.indices[our] = by_name[theirs][0]
        used.add(by_name[theirs][0])

    # GeoJSON: a Point geometry gives lon/lat unless the mapping says otherwise.
    if kind.located and GEOMETRY_LON in by_name:
        for our, synthetic in (("lon", GEOMETRY_LON), ("lat", GEOMETRY_LAT)):
            if our not in result.indices:
                result.indices[our] = by_name[synthetic][0]
            used.add(by_name[synthetic][0])

    normalised: dict[str, list[int]] = {}
    for index, name in enumerate(header):
        if index not in used:
            normalised.setdefault(normalise_header(name), []).append(index)
    for spec in kind.fields:
        if spec.name in result.indices:
            continue
        for alias in spec.aliases:
            candidates = [i for i in normalised.get(alias, []) if i not in used]
            if not candidates:
                continue
            if len(candidates) > 1:
                names = ", ".join(repr(header[i]) for i in candidates)
                result.errors.append(
                    RowIssue(
                        row=1,
                        field=spec.name,
                        column=header[candidates[0]],
                        message=f"columns {names} all match field {spec.name!r}: rename one or map it",
                    )
                )
            result.indices[spec.name] = candidates[0]
            used.update(candidates)
            break

    for index, name in enumerate(header):
        if index not in used and name not in (GEOMETRY_LON, GEOMETRY_LAT):
            result.ignored.append(name)
            result.warnings.append(RowIssue(row=1, column=name, message=f"unknown column {name!r} ignored"))
    result.columns = {f: header[i] for f, i in result.indices.items()}

    if "external_id" not in result.indices:
        result.errors.append(
            RowIssue(
                row=1,
                field="external_id",
                message="no external_id column (accepted names: "
                + ", ".join(kind.field("external_id").aliases)
                + "); send a mapping to name it",
            )
        )
    if "lon" in result.indices and "lat" not in result.indices:
        result.errors.append(RowIssue(row=1, field="lat", message="a lon column needs a lat column"))
    if "lat" in result.indices and "lon" not in result.indices:
        result.errors.append(RowIssue(row=1, field="lon", message="a lat column needs a lon column"))
    if kind.name == "deals" and "account_external_id" not in result.indices:
        result.errors.append(
            RowIssue(row=1, field="account_external_id", message="no account_external_id column")
        )
    return result
