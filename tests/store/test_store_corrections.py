"""Corrections are versioned: each save appends N+1, a stale base is refused, nothing is lost."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from pathloop.client.errors import ConflictError, RecordNotFoundError
from pathloop.client.settings import SiteSettings
from pathloop.client.store import PatchBox, SlideRecord, Store


@pytest.fixture
def box(slide: SlideRecord) -> PatchBox:
    return PatchBox(slide.id, x=2048, y=1024, width=1024, height=1024, mpp=1.0)


def test_versions_chain_and_a_stale_base_is_refused(store: Store, box: PatchBox) -> None:
    v1 = store.save_correction(box, data={"features": ["first"]}, author="dr-a")
    v2 = store.save_correction(box, data={"features": ["second"]}, author="dr-b", base_version=1)
    assert (v1.version, v1.parent_id, v1.parent_version) == (1, None, None)
    assert (v2.version, v2.parent_id, v2.parent_version) == (2, v1.id, 1)
    assert v2.correction_id == v1.correction_id and v2.patch == box

    # dr-a still edits version 1: the save must be refused, and nothing may change.
    with pytest.raises(ConflictError, match=r"at version 2.*based on version 1"):
        store.save_correction(box, data={"features": ["late"]}, author="dr-a", base_version=1)
    with pytest.raises(ConflictError):
        store.save_correction(box, data={"features": ["blind"]}, author="dr-a")
    assert store.correction_history(box) == [v1, v2]

    v3 = store.save_correction(box, data={"features": ["third"]}, author="dr-a", base_version=2)
    history = store.correction_history(box)
    assert [c.version for c in history] == [1, 2, 3]
    assert [c.data["features"][0] for c in history] == ["first", "second", "third"]
    assert history[-1] == v3 and v3.parent_id == v2.id
    saves = store.audit_events(subject=f"correction:{v1.correction_id}")
    assert [e.details["version"] for e in saves] == [1, 2, 3]
    assert [e.actor for e in saves] == ["dr-a", "dr-b", "dr-a"]


def test_patches_are_told_apart_by_box_and_resolution(store: Store, box: PatchBox) -> None:
    store.save_correction(box, data={"n": 1}, author="dr")
    coarser = PatchBox(box.slide_id, box.x, box.y, box.width, box.height, mpp=2.0)
    other = store.save_correction(coarser, data={"n": 2}, author="dr")
    assert other.version == 1
    untouched = PatchBox(box.slide_id, 0, 0, 10, 10, 1.0)
    assert store.correction_history(untouched) == []


def test_a_ranked_patch_designates_the_patch_and_is_marked_corrected(
    store: Store, slide: SlideRecord, box: PatchBox
) -> None:
    patch = {
        "x": box.x,
        "y": box.y,
        "width": box.width,
        "height": box.height,
        "mpp": box.mpp,
        "score_sum": 3.0,
        "score_mean": 0.3,
    }
    ranking = store.add_ranking(slide.id, strategy="uga", patches=[patch])
    (ranked,) = store.ranked_patches(ranking.id)
    v1 = store.save_correction(ranked.id, data={"n": 1}, author="dr")
    assert v1.patch == box and v1.ranked_patch_id == ranked.id
    assert store.ranked_patches(ranking.id)[0].status == "corrected"
    # The same patch by its box continues the same history.
    v2 = store.save_correction(box, data={"n": 2}, author="dr", base_version=1)
    assert store.correction_history(ranked.id) == [v1, v2]


def test_a_correction_may_carry_a_mask_raster(
    store: Store, slide: SlideRecord, box: PatchBox
) -> None:
    mask = store.rasters.save(
        np.ones((64, 64), np.uint8), slide.id, "correction-mask", mpp=1.0, downsample="mode"
    )
    saved = store.save_correction(box, data={}, author="dr", raster_id=mask.id)
    assert saved.raster_id == mask.id
    with pytest.raises(RecordNotFoundError):
        store.save_correction(box, data={}, author="dr", base_version=1, raster_id=999)
    with pytest.raises(RecordNotFoundError):
        store.save_correction(PatchBox(99, 0, 0, 1, 1, 1.0), data={}, author="dr")
    assert len(store.correction_history(box)) == 1


def test_two_writers_saving_on_the_same_base_one_wins(
    settings: SiteSettings, store: Store, box: PatchBox
) -> None:
    store.save_correction(box, data={"n": 0}, author="dr")
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def save(author: str) -> None:
        with Store.open(settings) as own:  # its own engine, as another process would have
            barrier.wait()
            try:
                own.save_correction(box, data={"by": author}, author=author, base_version=1)
                outcomes.append("saved")
            except ConflictError:
                outcomes.append("conflict")

    threads = [threading.Thread(target=save, args=(f"dr-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert sorted(outcomes) == ["conflict", "conflict", "conflict", "saved"]
    assert [c.version for c in store.correction_history(box)] == [1, 2]


def test_latest_corrections_gives_the_newest_version_of_each_patch(
        store: Store, box: PatchBox, slide: SlideRecord) -> None:
    other = PatchBox(slide.id, x=0, y=0, width=1024, height=1024, mpp=1.0)
    store.save_correction(box, data={"n": 1}, author="dr")
    newest = store.save_correction(box, data={"n": 2}, author="dr", base_version=1)
    single = store.save_correction(other, data={"n": 3}, author="dr")
    assert store.latest_corrections() == [newest, single]
    assert store.latest_corrections(slide.site_id) == [newest, single]
    assert store.latest_corrections("another-site") == []
