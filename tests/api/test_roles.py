"""Roles on the site API: what each role may do, what a pathologist's token cannot do (403),
and the audit log's record of every refusal, slide read and token change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pathloop.client.api import TokenStore, create_app
from pathloop.client.api.roles import Identity, Role, patch_change_refusal
from pathloop.client.errors import ConfigError, InputError
from pathloop.client.settings import SiteSettings
from pathloop.client.store import AuditEvent, Store


@pytest.fixture(scope="module")
def tokens(site: tuple[SiteSettings, str]) -> dict[str, str]:
    """A token per user: two pathologists, a reviewer, an operator and an admin."""
    settings, _ = site
    store = TokenStore.for_data_dir(settings.data_dir)
    return {"dr-a": store.add("dr-a"), "dr-b": store.add("dr-b"),
            "rev": store.add("rev", "reviewer"), "ops": store.add("ops", "operator"),
            "boss": store.add("boss", "admin")}


@pytest.fixture(scope="module")
def app_client(site: tuple[SiteSettings, str]) -> Iterator[TestClient]:
    settings, _ = site
    with TestClient(create_app(settings, viewer_dir=Path("/nonexistent"))) as test_client:
        yield test_client


def _as(tokens: dict[str, str], user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[user]}"}


def _events(settings: SiteSettings, **filters: str) -> list[AuditEvent]:
    with Store.open(settings) as store:
        return store.audit_events(**filters)  # type: ignore[arg-type]


def _patch_ids(client: TestClient, tokens: dict[str, str]) -> list[int]:
    return [item["id"] for item in client.get("/api/worklist", headers=_as(tokens, "dr-a")).json()]


def _save_mask(patch_id: int, base_version: int) -> tuple[str, dict[str, object]]:
    """An all-background RLE mask of the patch (128 x 128 px at the site's model µm/px)."""
    return (f"/api/patches/{patch_id}/versions",
            {"base_version": base_version,
             "mask": {"format": "rle", "width": 128, "height": 128, "values": [0],
                      "counts": [128 * 128]}})


def test_a_pathologist_cannot_change_a_patch_another_claimed(
        app_client: TestClient, site: tuple[SiteSettings, str], tokens: dict[str, str]) -> None:
    settings, _ = site
    patch = _patch_ids(app_client, tokens)[0]
    assert app_client.post(f"/api/patches/{patch}/claim",
                           headers=_as(tokens, "dr-b")).json()["claimed_by"] == "dr-b"
    before = len(_events(settings, action="access.denied"))
    attempts = [_save_mask(patch, 0),
                (f"/api/patches/{patch}/revert", {"base_version": 0, "to_version": 0}),
                (f"/api/patches/{patch}/accept-prediction", {"base_version": 0}),
                (f"/api/patches/{patch}/keep-annotation", {"base_version": 0}),
                (f"/api/patches/{patch}/skip", None),
                (f"/api/patches/{patch}/release", None),
                (f"/api/patches/{patch}/claim", {"force": True})]
    for path, body in attempts:
        refused = app_client.post(path, json=body, headers=_as(tokens, "dr-a"))
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["kind"] == "PermissionDenied"
        assert "dr-a (pathologist) may not" in refused.json()["detail"]
    # Nothing changed: dr-b still holds it, no version was saved, it is still pending.
    item = app_client.get(f"/api/patches/{patch}", headers=_as(tokens, "dr-a")).json()
    assert (item["claimed_by"], item["status"], item["version"]) == ("dr-b", "pending", 0)
    # The audit log shows each attempt: who, which request, which patch, why.
    denied = _events(settings, action="access.denied")[before:]
    assert [(e.actor, e.subject, e.details["request"]) for e in denied] == [
        ("dr-a", f"ranked_patch:{patch}", f"POST {path}") for path, _ in attempts]
    assert all(e.details["role"] == "pathologist" for e in denied)
    assert denied[0].details["claimed_by"] == "dr-b"
    # A reviewer may: save on dr-b's claim, take it over, release it.
    path, body = _save_mask(patch, 0)
    assert app_client.post(path, json=body, headers=_as(tokens, "rev")).status_code == 201
    assert app_client.post(f"/api/patches/{patch}/claim", json={"force": True},
                           headers=_as(tokens, "rev")).json()["claimed_by"] == "rev"
    assert app_client.post(f"/api/patches/{patch}/release",
                           headers=_as(tokens, "rev")).json()["claimed_by"] is None


def test_a_pathologist_corrects_free_patches_but_not_anothers_correction(
        app_client: TestClient, tokens: dict[str, str]) -> None:
    patch = _patch_ids(app_client, tokens)[1]
    path, body = _save_mask(patch, 0)
    # Unclaimed and never corrected: any pathologist may correct it, and again after.
    assert app_client.post(path, json=body, headers=_as(tokens, "dr-b")).status_code == 201
    path, body = _save_mask(patch, 1)
    assert app_client.post(path, json=body, headers=_as(tokens, "dr-b")).status_code == 201
    # dr-b's correction is dr-a's to review only as a reviewer, claimed or not.
    app_client.post(f"/api/patches/{patch}/claim", headers=_as(tokens, "dr-a"))
    path, body = _save_mask(patch, 2)
    refused = app_client.post(path, json=body, headers=_as(tokens, "dr-a"))
    assert refused.status_code == 403
    assert "latest correction is dr-b's" in refused.json()["detail"]
    assert app_client.post(f"/api/patches/{patch}/revert", headers=_as(tokens, "dr-a"),
                           json={"base_version": 2, "to_version": 0}).status_code == 403
    assert app_client.post(f"/api/patches/{patch}/release",  # her own claim: she may
                           headers=_as(tokens, "dr-a")).json()["claimed_by"] is None
    assert app_client.post(f"/api/patches/{patch}/revert", headers=_as(tokens, "rev"),
                           json={"base_version": 2, "to_version": 0}).status_code == 201


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/api/jobs", {"kind": "train"}),
    ("POST", "/api/jobs", {"kind": "tile", "slide_id": 1}),
    ("POST", "/api/jobs/some-job/cancel", None),
    ("GET", "/api/tokens", None),
    ("POST", "/api/tokens", {"user": "mallory", "role": "admin"}),
    ("DELETE", "/api/tokens/dr-b", None),
])
def test_a_pathologist_cannot_run_jobs_train_or_manage_tokens(
        app_client: TestClient, site: tuple[SiteSettings, str], tokens: dict[str, str],
        method: str, path: str, body: dict[str, object] | None) -> None:
    settings, _ = site
    users = TokenStore.for_data_dir(settings.data_dir).roles()
    jobs = app_client.get("/api/jobs", headers=_as(tokens, "dr-a")).json()  # may look
    refused = app_client.request(method, path, json=body, headers=_as(tokens, "dr-a"))
    assert refused.status_code == 403, refused.text
    assert refused.json()["kind"] == "PermissionDenied"
    last = _events(settings, action="access.denied")[-1]
    assert (last.actor, last.subject) == ("dr-a", f"route:{path}")
    assert last.details["request"] == f"{method} {path}"
    assert last.details["needs"] in ("operator", "admin")
    assert app_client.get("/api/jobs", headers=_as(tokens, "dr-a")).json() == jobs
    assert TokenStore.for_data_dir(settings.data_dir).roles() == users


def test_each_role_reaches_what_its_rank_allows(
        app_client: TestClient, tokens: dict[str, str]) -> None:
    """Reviewer: no jobs; operator: jobs but no tokens; admin: tokens."""
    job = {"kind": "predict"}  # no slide: refused by validation, after the role check
    assert app_client.post("/api/jobs", json=job, headers=_as(tokens, "rev")).status_code == 403
    assert app_client.post("/api/jobs", json=job, headers=_as(tokens, "ops")).status_code == 422
    assert app_client.get("/api/tokens", headers=_as(tokens, "ops")).status_code == 403
    assert app_client.get("/api/tokens", headers=_as(tokens, "boss")).status_code == 200
    assert app_client.get("/api/me", headers=_as(tokens, "rev")).json() == {
        "user": "rev", "role": "reviewer"}


def test_an_admin_manages_tokens_and_every_change_is_audited(
        app_client: TestClient, site: tuple[SiteSettings, str], tokens: dict[str, str]) -> None:
    settings, _ = site
    made = app_client.post("/api/tokens", json={"user": "dr-new", "role": "reviewer"},
                           headers=_as(tokens, "boss"))
    assert made.status_code == 201
    new = made.json()["token"]
    assert app_client.get("/api/me", headers={"Authorization": f"Bearer {new}"}).json() == {
        "user": "dr-new", "role": "reviewer"}
    listed = app_client.get("/api/tokens", headers=_as(tokens, "boss")).json()
    assert {"user": "dr-new", "role": "reviewer"} in listed
    other_role = app_client.post("/api/tokens", json={"user": "dr-new", "role": "admin"},
                                 headers=_as(tokens, "boss"))
    assert other_role.status_code == 422 and "revoke them" in other_role.json()["detail"]
    revoked = app_client.delete("/api/tokens/dr-new", headers=_as(tokens, "boss"))
    assert revoked.json() == {"user": "dr-new", "revoked": 1}
    assert app_client.get("/api/me", headers={
        "Authorization": f"Bearer {new}"}).status_code == 401
    events = _events(settings, subject="user:dr-new")
    assert [(e.actor, e.action, e.details) for e in events] == [
        ("boss", "token.add", {"role": "reviewer", "via": "api"}),
        ("boss", "token.revoke", {"role": "reviewer", "tokens": 1, "via": "api"})]
    assert new not in json.dumps([e.details for e in _events(settings)])


def test_slide_reads_are_audited_and_tiles_are_not(
        app_client: TestClient, site: tuple[SiteSettings, str], tokens: dict[str, str]) -> None:
    settings, _ = site
    before = len(_events(settings))
    assert app_client.get("/api/slides/1", headers=_as(tokens, "dr-b")).status_code == 200
    assert app_client.get("/api/slides/1/slide.dzi", headers=_as(tokens, "dr-b")
                          ).status_code == 200
    assert app_client.get("/api/slides/1/dz/0/0_0.jpeg", headers=_as(tokens, "dr-b")
                          ).status_code == 200
    events = _events(settings)[before:]
    assert [(e.actor, e.action, e.subject, e.details["request"]) for e in events] == [
        ("dr-b", "slide.view", "slide:1", "GET /api/slides/1"),
        ("dr-b", "slide.view", "slide:1", "GET /api/slides/1/slide.dzi")]


def test_the_roles_are_ordered() -> None:
    assert [r.value for r in Role] == ["pathologist", "reviewer", "operator", "admin"]
    assert Role.ADMIN.includes(Role.PATHOLOGIST) and Role.OPERATOR.includes(Role.REVIEWER)
    assert not Role.REVIEWER.includes(Role.OPERATOR)
    ann = Identity("ann", Role.PATHOLOGIST)
    assert patch_change_refusal(ann, claimed_by=None, last_author=None) is None
    assert patch_change_refusal(ann, claimed_by="ann", last_author="ann") is None
    assert patch_change_refusal(ann, claimed_by="bob", last_author=None) is not None
    assert patch_change_refusal(ann, claimed_by="ann", last_author="bob") is not None
    assert patch_change_refusal(Identity("rev", Role.REVIEWER), claimed_by="bob",
                                last_author="bob") is None


def test_a_token_file_from_before_roles_gives_pathologists(tmp_path: Path) -> None:
    path = tmp_path / "api-tokens.json"
    store = TokenStore(path)
    token = store.add("dr-old")
    entries = json.loads(path.read_text())
    del entries[0]["role"]  # as written before roles existed
    path.write_text(json.dumps(entries))
    assert store.identity_for(token) == Identity("dr-old", Role.PATHOLOGIST)
    assert store.identity_for(token + "x") is None
    with pytest.raises(InputError, match="revoke them"):
        store.add("dr-old", "admin")  # a change of role is a new token
    with pytest.raises(InputError, match="one of pathologist, reviewer, operator, admin"):
        store.add("dr-x", "superuser")
    entries[0]["role"] = "root"
    path.write_text(json.dumps(entries))
    with pytest.raises(ConfigError, match="unknown role 'root'"):
        store.identity_for(token)
