"""Read an uploaded table (CSV, GeoJSON Point FeatureCollection, XLSX) as a header and streamed rows.

Every row comes with its 1-based row number in the file (the header is row 1; for GeoJSON the n-th
feature is row n). Values are strings exactly as written (ZIP codes keep their leading zeros); typing,
trimming and validation happen later in SQL.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from app.services.ingest.errors import RowIssue, UploadRejected

GEOMETRY_LON = "(geometry lon)"
GEOMETRY_LAT = "(geometry lat)"
_CHUNK = 1 << 20
_DELIMITERS = (",", ";", "\t", "|")
_ENCODING_NAMES = {"utf-8": "utf-8", "utf-8-sig": "utf-8 with BOM", "cp1252": "cp1252", "utf-16": "utf-16"}


@dataclass
class SourceTable:
    """A parsed upload: header, streamed rows, and what the reader noticed on the way."""

    format: str
    header: list[str]
    rows: Iterator[tuple[int, list[str]]]
    encoding: str | None = None
    delimiter: str | None = None
    errors: list[RowIssue] = field(default_factory=list)
    warnings: list[RowIssue] = field(default_factory=list)
    error_count: int = 0

    def error(self, issue: RowIssue) -> None:
        """Record a row error found while streaming (the list is capped, the count is not)."""
        self.error_count += 1
        if len(self.errors) < 1000:
            self.errors.append(issue)


def open_table(path: Path, source: str) -> SourceTable:
    """Sniff the format from the content and open the table; unreadable files raise UploadRejected."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"PK\x03\x04"):
        return _open_xlsx(path, source)
    if stripped.startswith(b"{"):
        return _open_geojson(path, source)
    return _open_csv(path, source)


def detect_encoding(path: Path, source: str) -> tuple[str, RowIssue | None]:
    """UTF-8 (with or without BOM) first, Windows-1252 as the fallback; the warning says which was used."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", None
    encoding = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
    bad_line = _first_undecodable_line(path, encoding)
    if bad_line is None:
        return encoding, None
    if _first_undecodable_line(path, "cp1252") is None:
        return "cp1252", RowIssue(
            row=bad_line,
            message=f"not valid UTF-8 (first at line {bad_line}); read as Windows-1252 (cp1252)",
        )
    raise UploadRejected(
        f"{source} is neither UTF-8 nor Windows-1252 (cp1252): undecodable bytes on line {bad_line}",
        [RowIssue(row=bad_line, message="undecodable bytes: save the file as UTF-8")],
    )


def _first_undecodable_line(path: Path, encoding: str) -> int | None:
    decoder = codecs.getincrementaldecoder(encoding)()
    lines = 1
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(_CHUNK)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                return lines + chunk.count(b"\n", 0, exc.start)
            if b"\x00" in chunk:
                at = chunk.index(b"\x00")
                line = lines + chunk.count(b"\n", 0, at)
                raise UploadRejected(
                    f"line {line} contains a NUL byte: not a text file (or UTF-16 without a byte order mark)",
                    [RowIssue(row=line, message="NUL byte in a text file")],
                )
            if not chunk:
                return None
            lines += chunk.count(b"\n")


def _sniff_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _open_csv(path: Path, source: str) -> SourceTable:
    encoding, warning = detect_encoding(path, source)
    handle = path.open(encoding=encoding, newline="")
    first = handle.readline()
    delimiter = _sniff_delimiter(first)
    handle.seek(0)
    reader = csv.reader(handle, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        handle.close()
        raise UploadRejected(f"{source} is empty", [RowIssue(row=1, message="no header row")]) from None
    except csv.Error as exc:
        handle.close()
        raise UploadRejected(
            f"{source}: unreadable header: {exc}", [RowIssue(row=1, message=str(exc))]
        ) from None
    table = SourceTable(
        format="csv",
        header=[h.strip() for h in header],
        rows=iter(()),
        encoding=_ENCODING_NAMES[encoding],
        delimiter=delimiter,
    )
    if warning:
        table.warnings.append(warning)
    table.rows = _csv_rows(reader, handle, table)
    return table


def _csv_rows(reader: Any, handle: Any, table: SourceTable) -> Iterator[tuple[int, list[str]]]:
    width = len(table.header)
    previous = reader.line_num
    try:
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                table.error(RowIssue(row=previous + 1, message=f"unreadable CSV: {exc}"))
                return
            line = previous + 1
            previous = reader.line_num
            if len(row) != width:
                if not any(row):
                    continue
                if len(row) < width or any(row[width:]):
                    table.error(
                        RowIssue(
                            row=line,
                            message=f"row has {len(row)} fields but the header has {width}",
                        )
                    )
                    continue
                row = row[:width]
            elif not any(row):
                continue
            yield line, row
    finally:
        handle.close()


def cell_text(value: Any) -> str:
    """A spreadsheet or JSON value as text: integral numbers without '.0', dates in ISO 8601."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return orjson.dumps(value).decode()


def _open_geojson(path: Path, source: str) -> SourceTable:
    encoding, warning = detect_encoding(path, source)
    try:
        document = orjson.loads(path.read_bytes().decode(encoding))
    except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UploadRejected(f"{source} is not valid JSON: {exc}", [RowIssue(message=str(exc))]) from None
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise UploadRejected(
            f"{source} is JSON but not a GeoJSON FeatureCollection",
            [RowIssue(message="expected a FeatureCollection of Point features")],
        )
    features = document.get("features")
    if not isinstance(features, list):
        raise UploadRejected(f"{source}: 'features' is not a list", [RowIssue(message="no features list")])
    keys: dict[str, None] = {}
    for feature in features:
        properties = feature.get("properties") if isinstance(feature, dict) else None
        if isinstance(properties, dict):
            keys.update(dict.fromkeys(properties))
    header = [GEOMETRY_LON, GEOMETRY_LAT, *keys]
    table = SourceTable(format="geojson", header=header, rows=iter(()), encoding=_ENCODING_NAMES[encoding])
    if warning:
        table.warnings.append(warning)
    table.rows = _geojson_rows(features, list(keys), table)
    return table


def _geojson_rows(
    features: list[Any], keys: list[str], table: SourceTable
) -> Iterator[tuple[int, list[str]]]:
    for number, feature in enumerate(features, start=1):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            table.error(RowIssue(row=number, field="geometry", message="not a GeoJSON Feature"))
            continue
        lon = lat = ""
        geometry = feature.get("geometry")
        if geometry is not None:
            coordinates = geometry.get("coordinates") if isinstance(geometry, dict) else None
            if not isinstance(geometry, dict) or geometry.get("type") != "Point":
                kind = geometry.get("type") if isinstance(geometry, dict) else type(geometry).__name__
                table.error(
                    RowIssue(row=number, field="geometry", message=f"geometry must be a Point, got {kind}")
                )
                continue
            if (
                not isinstance(coordinates, list)
                or len(coordinates) < 2
                or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in coordinates[:2])
            ):
                table.error(
                    RowIssue(
                        row=number,
                        field="geometry",
                        value=orjson.dumps(coordinates).decode(),
                        message="Point coordinates must be two numbers [lon, lat]",
                    )
                )
                continue
            lon, lat = cell_text(coordinates[0]), cell_text(coordinates[1])
        properties = feature.get("properties") or {}
        if not isinstance(properties, dict):
            table.error(RowIssue(row=number, field="properties", message="properties must be an object"))
            continue
        yield number, [lon, lat, *(cell_text(properties.get(k)) for k in keys)]


def _open_xlsx(path: Path, source: str) -> SourceTable:
    try:
        import openpyxl
    except ImportError:  # pragma: no cover - openpyxl is a dependency
        raise UploadRejected(
            "XLSX uploads need the openpyxl package", [RowIssue(message="save as CSV")]
        ) from None
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for broken files
        raise UploadRejected(
            f"{source} is not a readable XLSX workbook: {exc}", [RowIssue(message=str(exc))]
        ) from None
    sheet = workbook.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    first = next(rows, None)
    if first is None:
        workbook.close()
        raise UploadRejected(
            f"{source}: the first sheet is empty", [RowIssue(row=1, message="no header row")]
        )
    header = [cell_text(v).strip() for v in first]
    while header and not header[-1]:
        header.pop()
    table = SourceTable(format="xlsx", header=header, rows=iter(()))
    table.rows = _xlsx_rows(rows, len(header), workbook, table)
    return table


def _xlsx_rows(
    rows: Iterator[Any], width: int, workbook: Any, table: SourceTable
) -> Iterator[tuple[int, list[str]]]:
    try:
        for number, values in enumerate(rows, start=2):
            cells = [cell_text(v) for v in values]
            if not any(cells):
                continue
            if len(cells) > width and any(cells[width:]):
                table.error(RowIssue(row=number, message=f"row has values beyond the {width} header columns"))
                continue
            cells = (cells + [""] * width)[:width]
            yield number, cells
    finally:
        workbook.close()
