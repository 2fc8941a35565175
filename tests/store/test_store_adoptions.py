"""The site's current model: the newest version not refused nor held, decided by a log."""

from __future__ import annotations

import pytest

from pathloop.client.errors import ConflictError, RecordNotFoundError
from pathloop.client.store import Store

KIND = "uga-ensemble"


def test_without_decisions_the_newest_version_is_current(store: Store) -> None:
    store.add_model_version(name="imported", kind=KIND)
    newest = store.add_model_version(name="trained-by-hand", kind=KIND)
    assert store.current_model_version(KIND) == newest
    assert store.current_model_version("ai2seg") is None


def test_held_and_refused_versions_are_kept_but_never_current(store: Store) -> None:
    base = store.add_model_version(name="imported", kind=KIND)
    held = store.add_model_version(name="global-v1", kind=KIND, held="waiting for the gate",
                                   actor="federation")
    assert store.current_model_version(KIND) == base  # held from its very first commit
    assert store.latest_model_version(KIND) == held  # stored all the same
    store.record_adoption(held.id, "refused", reason="worse", actor="federation", dice=0.1,
                          current_id=base.id, current_dice=0.6, margin=0.02, held_out=3)
    assert store.current_model_version(KIND) == base
    assert store.count_adoptions(KIND, "refused") == 1
    later = store.add_model_version(name="global-v2", kind=KIND, held="waiting")
    store.record_adoption(later.id, "adopted", reason="not worse", actor="federation")
    assert store.current_model_version(KIND) == later
    assert store.current_model_version(KIND, excluding=later.id) == base
    history = store.adoption_history(held.id)
    assert [d.outcome for d in history] == ["held", "refused"]
    assert (history[1].dice, history[1].current_id, history[1].current_dice,
            history[1].margin, history[1].held_out) == (0.1, base.id, 0.6, 0.02, 3)
    actions = [e.action for e in store.audit_events() if e.subject == f"model_version:{held.id}"]
    assert actions == ["model_version.add", "model_version.held", "model_version.refused"]


def test_a_version_s_newest_decision_is_in_force(store: Store) -> None:
    base = store.add_model_version(name="imported", kind=KIND)
    again = store.add_model_version(name="global-v1", kind=KIND, held="waiting")
    store.record_adoption(again.id, "refused", reason="worse", actor="federation")
    store.record_adoption(again.id, "adopted", reason="re-scored", actor="federation")
    assert store.current_model_version(KIND) == again
    assert store.count_adoptions(KIND, "refused") == 1
    assert base.id < again.id


def test_decisions_need_a_known_version_and_outcome(store: Store) -> None:
    with pytest.raises(RecordNotFoundError):
        store.record_adoption(42, "adopted", reason="?", actor="x")
    version = store.add_model_version(name="m", kind=KIND)
    with pytest.raises(ConflictError):  # the database's check constraint refuses it
        store.record_adoption(version.id, "maybe", reason="?", actor="x")  # type: ignore[arg-type]
    assert store.adoption_history(version.id) == []
