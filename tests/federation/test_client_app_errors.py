"""The ClientApp's failures reach the server as error replies that name no local path."""

from __future__ import annotations

from pathlib import Path

import pytest
from flwr.app import Context, Message, RecordDict
from support.flower import FakeGrid

from pathloop.client.federation import client_app
from pathloop.server.contract import QUERY


def _query(config: Path) -> Message:
    FakeGrid({})  # sets the task identity messages need
    context = Context(run_id=1, node_id=1, node_config={"site-config": str(config)},
                      state=RecordDict(), run_config={})
    return client_app.query(Message(RecordDict(), dst_node_id=1, message_type=QUERY),
                            context)


def test_a_site_error_names_its_kind_only(tmp_path: Path) -> None:
    reply = _query(tmp_path / "secret" / "missing.toml")
    assert reply.has_error()
    assert reply.error.reason == "ConfigError at the site (see its log)"


def test_a_bug_is_an_internal_error_without_its_text(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "site.toml"
    config.write_text('site-id = "a"\ndata-dir = "data"\n')

    def broken(*args: object) -> dict[str, float]:
        raise RuntimeError("/mnt/slides/patient-123.svs")

    monkeypatch.setattr(client_app, "site_status", broken)
    reply = _query(config)
    assert reply.has_error()
    assert reply.error.reason == "internal error at the site (see its log)"
