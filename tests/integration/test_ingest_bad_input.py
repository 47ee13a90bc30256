"""Bad uploads: a 422 problem+json naming each row (header = row 1) and field, and nothing changed.

Each rejection test first stores two accounts, then uploads a file that would update them as well as add
new ones, and checks that the counts and the stored values are exactly as before.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.integration.ingest_helpers import (
    PROBLEM,
    counts,
    error_for,
    import_ct,
    inside,
    rejected,
    stored,
    upload,
)

HEADER = "external_id,name,lon,lat,zip,value,workload,stage"
SEED = f"{HEADER}\nS1,Seed One,,,06320,10,1,open\nS2,Seed Two,,,06810,20,2,won\n"


@pytest.fixture
def seeded(client: TestClient, session: Session) -> dict[str, int]:
    """Two stored accounts (no geography needed); returns the row counts after storing them."""
    response = upload(client, "accounts", SEED)
    assert response.status_code == 200, response.text
    return counts(session)


def _unchanged(session: Session) -> None:
    one = stored(session, "S1")
    assert (one["name"], one["value"], one["workload"], one["stage"]) == ("Seed One", 10, 1, "open")


def _file(*rows: str) -> str:
    """The header, an update of S1 (which must not happen) and ``rows``."""
    return "\n".join([HEADER, "S1,Changed,,,06320,99,9,lost", *rows]) + "\n"


def test_missing_id_names_the_row(client: TestClient, session: Session, seeded: dict[str, int]) -> None:
    body = rejected(
        upload(client, "accounts", _file("N1,New,,,06320,1,1,open", ",No id,,,06320,1,1,open")),
        session,
        seeded,
    )
    assert "missing" in error_for(body, 4, "external_id")["message"]
    assert body["error_count"] == 1
    _unchanged(session)


def test_duplicate_ids_name_both_rows(client: TestClient, session: Session, seeded: dict[str, int]) -> None:
    content = _file("D1,First,,,06320,1,1,open", "X1,Other,,,06320,1,1,open", "D1,Second,,,06320,1,1,open")
    body = rejected(upload(client, "accounts", content), session, seeded)
    error = error_for(body, 5, "external_id")
    assert error["value"] == "D1" and "row(s) 3" in error["message"]
    assert all(e["row"] != 3 for e in body["errors"])  # the first one is not an error by itself
    _unchanged(session)


def test_mapping_naming_a_column_not_in_the_file(
    client: TestClient, session: Session, seeded: dict[str, int]
) -> None:
    mapping = json.dumps({"external_id": "Account Number", "zip": "zip"})
    body = rejected(upload(client, "accounts", _file(), mapping=mapping), session, seeded)
    error = error_for(body, 1, "external_id")
    assert error["column"] == "Account Number" and "not in the file" in error["message"]
    _unchanged(session)


def test_mapping_naming_an_unknown_field(
    client: TestClient, session: Session, seeded: dict[str, int]
) -> None:
    mapping = json.dumps({"revenue_2024": "value"})
    body = rejected(upload(client, "accounts", _file(), mapping=mapping), session, seeded)
    assert "unknown field" in error_for(body, 1, "revenue_2024")["message"]


def test_malformed_mapping_is_a_400_naming_the_parameter(client: TestClient, session: Session) -> None:
    before = counts(session)
    response = upload(client, "accounts", _file(), mapping="{not json")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["parameter"] == "mapping"
    assert counts(session) == before


def test_unknown_columns_are_ignored_with_warnings(client: TestClient, session: Session) -> None:
    response = upload(client, "accounts", "id,name,Favourite Colour,notes\nU1,Unknown cols,blue,hi\n")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["ignored_columns"] == ["Favourite Colour", "notes"]
    assert {(w["row"], w["column"]) for w in report["warnings"]} == {(1, "Favourite Colour"), (1, "notes")}
    assert stored(session, "U1")["name"] == "Unknown cols"


def test_cp1252_file_is_decoded_and_reported(client: TestClient, session: Session) -> None:
    content = "id,name,segment\nC1,Café Müller,Größe\n".encode("cp1252")
    response = upload(client, "accounts", content)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["encoding"] == "cp1252"
    assert any("cp1252" in w["message"] and w["row"] == 2 for w in report["warnings"])
    row = stored(session, "C1")
    assert row["name"] == "Café Müller" and row["segment"] == "Größe"


def test_utf8_with_bom_keeps_the_first_header(client: TestClient, session: Session) -> None:
    content = "\ufeffexternal_id,name\nB1,Beyoncé GmbH\n".encode()
    response = upload(client, "accounts", content)
    assert response.status_code == 200, response.text
    assert response.json()["encoding"] == "utf-8 with BOM"
    assert response.json()["columns"]["external_id"] == "external_id"
    assert stored(session, "B1")["name"] == "Beyoncé GmbH"


def test_bytes_that_are_neither_utf8_nor_cp1252(client: TestClient, session: Session) -> None:
    before = counts(session)
    content = b"id,name\nE1,ok\nE2,bad \x81 byte\n"
    body = rejected(upload(client, "accounts", content), session, before)
    assert body["errors"][0]["row"] == 3 and "UTF-8" in body["detail"]


def test_zip_that_lost_its_leading_zero_is_padded_with_a_warning(
    client: TestClient, session: Session
) -> None:
    content = "id,name,zip\nZ1,Padded,2139\nZ2,Plus four,02139-4307\nZ3,Fine,10001\nZ4,Both,2139-4307\n"
    response = upload(client, "accounts", content)
    assert response.status_code == 200, response.text
    warnings = response.json()["warnings"]
    found = [(w["row"], w["field"], w["value"]) for w in warnings]
    assert found == [(2, "zip", "2139"), (5, "zip", "2139-4307")]
    assert "02139" in warnings[0]["message"]
    zips = [stored(session, z)["zip"] for z in ("Z1", "Z2", "Z3", "Z4")]
    assert zips == ["02139", "02139", "10001", "02139"]


@pytest.mark.parametrize(
    ("value", "words"),
    [("213", "3 digits or fewer"), ("7", "3 digits or fewer"), ("MA 02139", "not a US ZIP")],
)
def test_bad_zip_is_an_error(
    client: TestClient, session: Session, seeded: dict[str, int], value: str, words: str
) -> None:
    body = rejected(upload(client, "accounts", _file(f"N1,New,,,{value},1,1,open")), session, seeded)
    error = error_for(body, 3, "zip")
    assert error["value"] == value and words in error["message"]
    _unchanged(session)


@pytest.mark.parametrize(
    ("lon", "lat", "field"), [("-200", "41.5", "lon"), ("-72.7", "95", "lat"), ("abc", "41.5", "lon")]
)
def test_bad_coordinates_are_errors(
    client: TestClient, session: Session, seeded: dict[str, int], lon: str, lat: str, field: str
) -> None:
    body = rejected(upload(client, "accounts", _file(f"N1,New,{lon},{lat},,1,1,open")), session, seeded)
    error = error_for(body, 3, field)
    assert error["value"] == (lon if field == "lon" else lat)
    _unchanged(session)


def test_lon_without_lat_is_an_error(client: TestClient, session: Session, seeded: dict[str, int]) -> None:
    body = rejected(upload(client, "accounts", _file("N1,New,-72.7,,,1,1,open")), session, seeded)
    assert "without lat" in error_for(body, 3, "lat")["message"]


def test_swapped_latitude_and_longitude(
    client: TestClient, data_dir: Path, session: Session, seeded: dict[str, int]
) -> None:
    import_ct(client, data_dir)
    before = counts(session)
    lon, lat = inside(data_dir, "06810")
    ok = inside(data_dir, "06320")
    content = _file(f"N1,Fine,{ok[0]},{ok[1]},,1,1,open", f"N2,Swapped,{lat},{lon},,1,1,open")
    body = rejected(upload(client, "accounts", content), session, before)
    error = error_for(body, 4, "lat")
    assert "latitude/longitude look swapped" in error["message"] and "06810" in error["message"]
    assert body["error_count"] == 1
    _unchanged(session)


@pytest.mark.parametrize(
    ("row", "field", "words"),
    [
        ("N1,New,,,06320,1,-3,open", "workload", "negative workload"),
        ("N1,New,,,06320,-5,1,open", "value", "negative value"),
        ("N1,New,,,06320,1,1,maybe", "stage", "prospect, open, won, lost"),
        ("N1,New,,,06320,1.2.3,1,open", "value", "must be a number"),
        ("N1,New,,,06320,NaN,1,open", "value", "must be a number"),
        ("N1,,,,06320,1,1,open", "name", "name is required"),
    ],
)
def test_bad_values_are_errors(
    client: TestClient, session: Session, seeded: dict[str, int], row: str, field: str, words: str
) -> None:
    body = rejected(upload(client, "accounts", _file(row)), session, seeded)
    assert words in error_for(body, 3, field)["message"]
    _unchanged(session)


def test_every_error_is_listed_up_to_the_cap_with_a_count(
    client: TestClient, session: Session, seeded: dict[str, int]
) -> None:
    rows = [f"N{k},New,,,06320,1,-1,open" for k in range(1500)]
    body = rejected(upload(client, "accounts", _file(*rows)), session, seeded)
    assert body["error_count"] == 1500 and body["errors_truncated"] is True
    assert len(body["errors"]) == 1000
    assert [e["row"] for e in body["errors"][:3]] == [3, 4, 5]
    assert all(e["field"] == "workload" for e in body["errors"])


def test_errors_of_different_kinds_are_all_listed(
    client: TestClient, session: Session, seeded: dict[str, int]
) -> None:
    content = _file("N1,New,,,213,1,1,open", "N2,New,,,06320,-1,1,open", "N1,Dup,,,06320,1,1,open")
    body = rejected(upload(client, "accounts", content), session, seeded)
    assert {(e["row"], e["field"]) for e in body["errors"]} == {(3, "zip"), (4, "value"), (5, "external_id")}
    assert body["error_count"] == 3


def test_ragged_row_is_an_error(client: TestClient, session: Session, seeded: dict[str, int]) -> None:
    body = rejected(
        upload(client, "accounts", _file("N1,New,,,06320,1,1,open,extra,fields")), session, seeded
    )
    assert "fields" in error_for(body, 3, None)["message"]


def test_quoted_newline_keeps_file_line_numbers(
    client: TestClient, session: Session, seeded: dict[str, int]
) -> None:
    content = _file('N1,"Two\nline name",,,06320,1,1,open', "N2,Bad,,,06320,1,-1,open")
    body = rejected(upload(client, "accounts", content), session, seeded)
    assert error_for(body, 5, "workload")  # row 3 spans lines 3-4


def test_missing_id_column(client: TestClient, session: Session) -> None:
    before = counts(session)
    body = rejected(upload(client, "accounts", "name,zip\nNo ids,06320\n"), session, before)
    assert "external_id" in error_for(body, 1, "external_id")["message"]


def test_header_only_and_empty_files(client: TestClient, session: Session) -> None:
    before = counts(session)
    body = rejected(upload(client, "accounts", HEADER + "\n"), session, before)
    assert "no data rows" in body["detail"]
    empty = upload(client, "accounts", b"")
    assert empty.status_code == 400 and empty.headers["content-type"].startswith(PROBLEM)
    assert counts(session) == before


def test_oversized_upload_is_413(client: TestClient, session: Session) -> None:
    before = counts(session)
    content = HEADER + "\n" + "x" * (9 << 20)  # the client fixture allows 8 MiB
    response = upload(client, "accounts", content)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith(PROBLEM)
    assert counts(session) == before
