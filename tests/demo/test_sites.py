"""The demo's sites: sample slides made, ingested and tiled at each site's own node."""

from __future__ import annotations

from pathlib import Path

from pathloop.client.demo import run_demo, site_settings
from pathloop.client.store import Store


def test_demo_ingests_and_tiles_every_site(tmp_path: Path) -> None:
    summary = run_demo(tmp_path, n_sites=3, slides_per_site=1, size=2048, loop=False)
    assert sorted(summary.site_dirs) == ["site-a", "site-b", "site-c"]
    assert len(summary.rows) == 3
    for row in summary.rows:
        assert row.kept > 0
        assert row.on_true_tissue > 0.9
        with Store.open(site_settings(tmp_path, row.site_id)) as store:
            slides = store.list_slides()
            assert [s.name for s in slides] == [row.slide_name]
            tiling = store.latest_tiling(slides[0].id)
            assert tiling is not None and tiling.n_tiles == row.kept
            assert store.rasters.latest(slides[0].id, "tissue-mask") is not None
    # Each site is its own node: no site's store holds another's slides.
    assert len({row.slide_name for row in summary.rows}) == 3
