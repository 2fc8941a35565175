"""Ingesting slides: good ones are recorded, bad ones refused with a reason, nothing stored."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pathloop.client.errors import (
    CorruptSlideError,
    MissingResolutionError,
    PathOutsideRootsError,
    SlideError,
    UnsupportedSlideError,
)
from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store
from pathloop.client.usecases.slides import find_slide, ingest_slide, tile_slide


@pytest.fixture
def slide_dir(tmp_path: Path, shared_data: Path) -> Path:
    """A slide root with the real slides and every kind of bad file a user may drop in it."""
    root = tmp_path / "slides"
    root.mkdir()
    wsi = shared_data / "wsi"
    shutil.copy(wsi / "cmu_small_region.svs", root / "good.svs")
    shutil.copy(wsi / "small_dicom.dcm", root / "small_dicom.dcm")
    shutil.copy(wsi / "fixtures/boxes.tiff", root / "boxes.tiff")
    (root / "empty.svs").write_bytes(b"")
    data = (wsi / "cmu_small_region.svs").read_bytes()
    (root / "truncated.svs").write_bytes(data[: len(data) * 3 // 4])
    (root / "notes.svs").write_text("patient list, not a slide\n" * 20)
    return root


@pytest.fixture
def settings(tmp_path: Path, slide_dir: Path) -> SiteSettings:
    return SiteSettings(site_id="test-site", data_dir=tmp_path / "node",
                        slide_roots=(slide_dir,))


BAD_FILES = [
    ("small_dicom.dcm", UnsupportedSlideError, "unsupported DICOM slide.*image flavor"),
    ("empty.svs", CorruptSlideError, r"the file is empty \(0 bytes\)"),
    ("truncated.svs", CorruptSlideError, "truncated: data expected up to byte"),
    ("notes.svs", UnsupportedSlideError, "not a slide format.*looks like a text file"),
    ("boxes.tiff", MissingResolutionError, r"records no resolution \(µm/px\)"),
]


@pytest.mark.parametrize(("name", "error", "reason"), BAD_FILES)
def test_bad_slides_are_refused_and_nothing_is_stored(
        settings: SiteSettings, slide_dir: Path, name: str, error: type[SlideError],
        reason: str) -> None:
    with Store.open(settings) as store:
        with pytest.raises(error, match=reason) as caught:
            ingest_slide(settings, store, slide_dir / name)
        assert str(caught.value).startswith(str(slide_dir / name))
        assert store.list_slides() == []
        assert store.audit_events() == []


def test_path_outside_the_roots_is_refused(settings: SiteSettings, shared_data: Path,
                                           slide_dir: Path) -> None:
    with Store.open(settings) as store:
        outside = shared_data / "wsi/cmu_small_region.svs"
        with pytest.raises(PathOutsideRootsError, match="outside the configured slide roots"):
            ingest_slide(settings, store, outside)
        # A symlink inside the root that points outside is refused too.
        (slide_dir / "link.svs").symlink_to(outside)
        with pytest.raises(PathOutsideRootsError):
            ingest_slide(settings, store, slide_dir / "link.svs")
        with pytest.raises(PathOutsideRootsError):
            ingest_slide(settings, store, slide_dir / ".." / ".." / "etc.svs")
        assert store.list_slides() == []


def test_good_slide_is_recorded_once_and_tiled(settings: SiteSettings, slide_dir: Path) -> None:
    with Store.open(settings) as store:
        first = ingest_slide(settings, store, slide_dir / "good.svs")
        again = ingest_slide(settings, store, slide_dir / "good.svs")
        assert first.created and not again.created
        assert again.slide.id == first.slide.id
        assert first.slide.site_id == "test-site"
        assert first.slide.mpp_x == pytest.approx(0.499)
        result = tile_slide(settings, store, first.slide)
        assert result.kept == len(list(store.iter_tiles(result.tiling.id))) > 0
        assert store.rasters.latest(first.slide.id, "tissue-mask") is not None
        assert find_slide(store, first.slide.content_hash[:12]).id == first.slide.id


def test_slide_without_resolution_is_recorded_with_the_users(settings: SiteSettings,
                                                             slide_dir: Path) -> None:
    with Store.open(settings) as store:
        record = ingest_slide(settings, store, slide_dir / "boxes.tiff", mpp=0.25).slide
        assert (record.mpp_x, record.mpp_source) == (0.25, "user")


def _cli(*args: str, settings: SiteSettings, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "pathloop.toml"
    roots = ", ".join(f'"{r}"' for r in settings.slide_roots)
    config.write_text(f'site-id = "{settings.site_id}"\ndata-dir = "{settings.data_dir}"\n'
                      f"slide-roots = [{roots}]\n")
    return subprocess.run([sys.executable, "-m", "pathloop.client", "--config", str(config),
                           *args], capture_output=True, text=True, timeout=120)


def test_cli_prints_one_line_per_bad_file_and_exits_non_zero(
        settings: SiteSettings, slide_dir: Path, tmp_path: Path, shared_data: Path) -> None:
    names = [name for name, _, _ in BAD_FILES]
    paths = [str(slide_dir / n) for n in names] + [str(shared_data / "wsi/cmu_small_region.svs")]
    done = _cli("slides", "add", *paths, settings=settings, tmp_path=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == len(paths), done.stderr
    assert all(line.startswith("error: ") for line in lines)
    assert "Traceback" not in done.stderr
    for line, path in zip(lines, paths, strict=True):
        assert path in line
    listed = _cli("slides", "list", settings=settings, tmp_path=tmp_path)
    assert listed.returncode == 0
    assert "0 slide(s)" in listed.stdout


def test_cli_adds_lists_and_tiles(settings: SiteSettings, slide_dir: Path,
                                  tmp_path: Path) -> None:
    added = _cli("slides", "add", str(slide_dir / "good.svs"), "--site", "ward-7",
                 settings=settings, tmp_path=tmp_path)
    assert added.returncode == 0, added.stderr
    assert "added: slide 1 good.svs" in added.stdout
    info = _cli("slides", "info", str(slide_dir / "good.svs"), settings=settings,
                tmp_path=tmp_path)
    assert "aperio" in info.stdout and "2220" in info.stdout
    tiled = _cli("tile", "1", settings=settings, tmp_path=tmp_path)
    assert tiled.returncode == 0, tiled.stderr
    assert "tissue tiles" in tiled.stdout
    listed = _cli("slides", "list", settings=settings, tmp_path=tmp_path)
    assert "ward-7" in listed.stdout and "1 slide(s)" in listed.stdout
    missing = _cli("tile", "99", settings=settings, tmp_path=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.strip().startswith("error: ")
    assert len(missing.stderr.strip().splitlines()) == 1
