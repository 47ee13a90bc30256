"""Starting `territory serve` for the benches and end-to-end tests: a service that cannot start is reported
with its log, never waited on until the timeout."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.servicerun import ServiceError, start_service


def test_a_service_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    # nothing listens on port 1: the service cannot reach its database and exits
    env = {"DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none", "TERRITORY_LOAD_DEMO": "false"}
    with pytest.raises(ServiceError, match="exited with") as info:  # not "did not answer": no timeout
        start_service(env, "--no-demo", "--workers", "0", log=log, timeout_s=120)
    assert log.read_text() and log.read_text()[-200:] in str(info.value)
