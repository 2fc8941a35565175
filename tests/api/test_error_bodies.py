"""What error answers reveal: no filesystem path, data root or SQL in any 4xx/5xx body; the
details go to the service's log instead."""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from pathloop.client.api import TokenStore, convert, create_app
from pathloop.client.api.errors import public_detail
from pathloop.client.api.jobs import Job
from pathloop.client.errors import ConflictError, InputError, SlideNotFoundError
from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store
from pathloop.client.store.db import write_session

_SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|FROM|WHERE|sqlite3|IntegrityError|"
                  r"OperationalError|constraint)\b", re.IGNORECASE)


def _assert_reveals_nothing(body: str, *secrets: Path) -> None:
    for secret in secrets:
        assert str(secret) not in body, body
    assert "/tmp" not in body and not _SQL.search(body), body


@pytest.fixture
def site(tmp_path: Path) -> tuple[SiteSettings, int, int, Path]:
    """A site whose one slide's file has vanished, and a slide outside the slide roots;
    their ids and the vanished file's path."""
    roots = tmp_path / "slides"
    roots.mkdir()
    settings = SiteSettings(site_id="s", data_dir=tmp_path / "data", slide_roots=(roots,))
    gone = roots / "patient-0042.svs"
    gone.write_bytes(b"x")
    with Store.open(settings) as store:
        vanished, _ = store.add_slide(content_hash="a" * 64, name="patient-0042.svs", path=gone,
                                      width=1000, height=1000, mpp_x=0.5, mpp_y=0.5)
        outside, _ = store.add_slide(content_hash="b" * 64, name="o.svs",
                                     path=tmp_path / "elsewhere" / "o.svs",
                                     width=1000, height=1000, mpp_x=0.5, mpp_y=0.5)
    gone.unlink()
    return settings, vanished.id, outside.id, gone


@pytest.fixture
def client(site: tuple[SiteSettings, int, int, Path]) -> Iterator[TestClient]:
    settings = site[0]
    token = TokenStore.for_data_dir(settings.data_dir).add("dr-a")
    with TestClient(create_app(settings, viewer_dir=Path("/nonexistent")),
                    headers={"Authorization": f"Bearer {token}"},
                    raise_server_exceptions=False) as test_client:
        yield test_client


def test_a_slide_whose_file_vanished_is_named_by_id_not_path(
        client: TestClient, site: tuple[SiteSettings, int, int, Path],
        caplog: pytest.LogCaptureFixture) -> None:
    settings, vanished, outside, gone = site
    with caplog.at_level(logging.WARNING, logger="pathloop.client.api.errors"):
        answer = client.get(f"/api/slides/{vanished}/dz/0/0_0.jpeg")  # opens the file
        assert answer.status_code == 404, answer.text
        assert answer.json()["kind"] == "SlideNotFoundError"
        assert answer.json()["detail"].startswith("the slide's file: ")
        _assert_reveals_nothing(answer.text, gone, settings.data_dir)
        refused = client.get(f"/api/slides/{outside}/dz/0/0_0.jpeg")
        assert refused.status_code == 403
        assert "outside the configured slide roots" in refused.json()["detail"]
        _assert_reveals_nothing(refused.text, settings.slide_roots[0])
    assert str(gone) in caplog.text  # the admin finds the file in the log


def test_a_database_failure_answers_500_without_sql_and_logs_it(
        client: TestClient, site: tuple[SiteSettings, int, int, Path],
        caplog: pytest.LogCaptureFixture) -> None:
    settings = site[0]
    connection = sqlite3.connect(settings.data_dir / "pathloop.db")
    connection.execute("ALTER TABLE rankings RENAME TO rankings_moved")
    connection.commit()
    connection.close()
    with caplog.at_level(logging.ERROR, logger="pathloop.client.api.errors"):
        answer = client.get("/api/worklist")
    assert answer.status_code == 500
    assert answer.json()["kind"] == "ServerError"
    _assert_reveals_nothing(answer.text, settings.data_dir)
    reference = re.search(r"reference ([0-9a-f]{8})", answer.json()["detail"])
    assert reference is not None
    logged = next(r for r in caplog.records if reference.group(1) in r.getMessage())
    assert "SELECT" in logged.getMessage() and "rankings" in logged.getMessage()


def test_a_bug_answers_json_500_with_nothing_of_its_message(
        client: TestClient, site: tuple[SiteSettings, int, int, Path]) -> None:
    site_state = client.app.state.site  # type: ignore[attr-defined]

    def broken(slide_id: int) -> None:
        raise RuntimeError(f"cannot open {site[0].data_dir}/pathloop.db: SELECT * FROM slides")

    site_state.tiles.slide_record = broken
    answer = client.get("/api/slides/1")
    assert answer.status_code == 500
    assert answer.json()["kind"] == "ServerError"
    _assert_reveals_nothing(answer.text, site[0].data_dir)


def test_a_conflicting_write_says_so_without_the_databases_words(tmp_path: Path) -> None:
    with Store.open(SiteSettings(site_id="s", data_dir=tmp_path)) as store:
        store.add_model_version(name="m", kind="k")
        with pytest.raises(ConflictError) as raised, write_session(store.engine) as session:
            session.execute(text("INSERT INTO model_versions SELECT * FROM model_versions"))
    assert "try again" in str(raised.value)
    _assert_reveals_nothing(str(raised.value))
    assert "UNIQUE" in str(raised.value.__cause__)  # kept for the log


@pytest.mark.parametrize("error, expected", [
    (SlideNotFoundError("/srv/slides/p-17.svs", "no such file"), "the slide's file: no such file"),
    (InputError("raster /var/lib/pathloop/slide-3/x.zarr: bad (64 µm/px)"),
     "raster <path>: bad (64 µm/px)"),
    (InputError("in site-data/slide-3/x.zarr under the root"), "in <path> under the root"),
])
def test_paths_are_taken_out_of_4xx_details(error: InputError, expected: str) -> None:
    assert public_detail(error, hidden=("site-data",)) == expected


def test_a_missing_viewer_is_reported_without_its_folder(client: TestClient) -> None:
    answer = client.get("/")
    assert answer.status_code == 404 and answer.json()["kind"] == "ViewerMissing"
    assert "/nonexistent" not in answer.text


def test_a_failed_jobs_error_shows_no_path_or_sql() -> None:
    failed = Job(id="j", kind="rank", slide_id=1, params={}, user="ops", state="failed",
                 error="the store failed: (sqlite3.OperationalError) disk I/O error\n"
                       "[SQL: SELECT rankings.id FROM rankings WHERE rankings.slide_id = ?]\n"
                       "[parameters: (1,)]\n(Background on this error at: "
                       "https://sqlalche.me/e/20/e3q8)")
    assert convert.job(failed).error == ("the store failed: (sqlite3.OperationalError) disk "
                                         "I/O error")
    vanished = Job(id="k", kind="tile", slide_id=1, params={}, user="ops", state="failed",
                   error="/srv/slides/patient-0042.svs: no such file")
    assert convert.job(vanished).error == "<path>: no such file"
