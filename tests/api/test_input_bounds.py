"""What the schema fuzzing found, each pinned: ids beyond the store's 64-bit integers, bodies
that are not UTF-8 JSON, and bodies sent without a token."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pathloop.client.api import create_app
from pathloop.client.settings import SiteSettings

BEYOND_INT64 = 2**63  # SQLite and PostgreSQL integers stop at 2**63 - 1


@pytest.mark.parametrize(("path", "name"), [
    (f"/api/slides/{BEYOND_INT64}", "slide_id"),
    (f"/api/slides/{BEYOND_INT64}/slide.dzi", "slide_id"),
    (f"/api/slides/1/dz/0/{BEYOND_INT64}_0.jpeg", "col"),
    (f"/api/worklist?slide_id={BEYOND_INT64}", "slide_id"),
    (f"/api/patches/{BEYOND_INT64}", "patch_id"),
    (f"/api/patches/{BEYOND_INT64}/versions", "patch_id"),
    (f"/api/patches/1/mask?version={BEYOND_INT64}", "version"),
    (f"/api/inspections/{BEYOND_INT64}/items", "inspection_id"),
    (f"/api/inspections/1/items/{BEYOND_INT64}", "item_id"),
    (f"/api/inspections/1/items/1/views/combined.png?selected={BEYOND_INT64}", "selected"),
])
def test_an_id_beyond_the_stores_integers_is_a_422_naming_it(client: TestClient, path: str,
                                                              name: str) -> None:
    # Before: the database driver's OverflowError, a 500.
    answer = client.get(path)
    assert answer.status_code == 422, answer.text
    assert name in answer.json()["detail"]


def test_a_body_version_beyond_the_stores_integers_is_a_422(client: TestClient) -> None:
    answer = client.post("/api/patches/1/accept-prediction",
                         json={"base_version": BEYOND_INT64})
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"].startswith("base_version:")


def test_a_body_that_is_not_json_is_refused_in_the_error_shape(client: TestClient) -> None:
    headers = {"Content-Type": "application/json"}
    not_utf8 = client.post("/api/jobs", content=b"\xff\xfe{", headers=headers)
    assert not_utf8.status_code == 400  # documented for every route
    assert not_utf8.json()["kind"] == "HTTPError"  # before: FastAPI's bare {"detail"}
    not_json = client.post("/api/jobs", content=b"{kind", headers=headers)
    assert not_json.status_code == 422
    assert not_json.json()["detail"].startswith("body: JSON decode error at character 1")


def test_without_a_token_no_body_is_parsed(site: tuple[SiteSettings, str]) -> None:
    settings, _ = site
    with TestClient(create_app(settings, viewer_dir=Path("/nonexistent"))) as stranger:
        for body in (b"\xff\xfe{", b"{kind", b'{"kind": "tile", "slide_id": 1}'):
            answer = stranger.post("/api/jobs", content=body,
                                   headers={"Content-Type": "application/json",
                                            "Authorization": "Bearer not-a-token"})
            assert answer.status_code == 401, (body, answer.text)  # before: 400, 422, 401
            assert answer.json()["kind"] == "AuthenticationError"
            assert answer.headers["www-authenticate"] == "Bearer"
        assert stranger.post("/api/jobs", content=b"{kind").status_code == 401
        assert stranger.get("/api/health").status_code == 200
        assert stranger.get("/api/openapi.json").status_code == 200


def test_the_schema_documents_the_answers_any_route_may_give() -> None:
    from pathloop.client.api.openapi import schema

    for path, operations in schema()["paths"].items():
        for operation in operations.values():
            assert {"400", "401", "411", "413"} <= set(operation["responses"]), path
