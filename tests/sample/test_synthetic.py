"""The synthetic sample-slide generator: readable by both slide libraries, right, repeatable."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import openslide
import pytest
import tifffile
import tiffslide
from PIL import Image

import pathloop.client.sample as sample
from pathloop.client.errors import RegionError
from pathloop.client.sample import (
    SITE_MORPHOLOGIES,
    SITE_STAINS,
    SyntheticSlide,
    make_sample_sites,
    read_mask_region,
    write_synthetic_slide,
)

WIDTH, HEIGHT = 2048, 1536


def _write(directory: Path, name: str, **kwargs: object) -> SyntheticSlide:
    arguments: dict[str, object] = dict(width=WIDTH, height=HEIGHT, seed=11)
    arguments.update(kwargs)
    return write_synthetic_slide(directory, name, **arguments)


def _rgb(path: Path, level: int = 0) -> np.ndarray:
    with openslide.OpenSlide(str(path)) as slide:
        size = slide.level_dimensions[level]
        return np.asarray(slide.read_region((0, 0), level, size).convert("RGB"))


def _mask(path: Path) -> np.ndarray:
    return tifffile.imread(path)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("synthetic")


@pytest.fixture(scope="module")
def slide(folder: Path) -> SyntheticSlide:
    return _write(folder, "slide")


@pytest.fixture(scope="module")
def pixels(slide: SyntheticSlide) -> np.ndarray:
    return _rgb(slide.slide_path)


@pytest.fixture(scope="module")
def labels(slide: SyntheticSlide) -> np.ndarray:
    return _mask(slide.label_mask_path)


@pytest.fixture(scope="module")
def nuclei(slide: SyntheticSlide) -> np.ndarray:
    return _mask(slide.nuclei_mask_path)


def test_public_surface() -> None:
    assert sorted(sample.__all__) == sorted([
        "SITE_MORPHOLOGIES", "SITE_STAINS", "SiteMorphology", "SiteStain", "SyntheticSlide",
        "make_sample_sites", "read_mask_region", "write_synthetic_slide"])


def test_returned_description(slide: SyntheticSlide, folder: Path) -> None:
    assert slide.slide_path == folder / "slide.svs"
    assert slide.label_mask_path == folder / "slide.labels.tiff"
    assert slide.nuclei_mask_path == folder / "slide.nuclei.tiff"
    assert (slide.width, slide.height, slide.mpp, slide.seed) == (WIDTH, HEIGHT, 0.5, 11)
    assert slide.stain == SITE_STAINS[0] and slide.has_masks
    assert not list(folder.glob(".*partial"))  # no temporary files left behind


def test_openslide_reads_levels_mpp_and_power(slide: SyntheticSlide) -> None:
    with openslide.OpenSlide(str(slide.slide_path)) as osr:
        assert osr.properties[openslide.PROPERTY_NAME_VENDOR] == "aperio"
        assert osr.level_count == 2
        assert osr.level_dimensions == ((WIDTH, HEIGHT), (WIDTH // 4, HEIGHT // 4))
        assert osr.level_downsamples == pytest.approx((1.0, 4.0))
        assert float(osr.properties[openslide.PROPERTY_NAME_MPP_X]) == pytest.approx(0.5)
        assert float(osr.properties[openslide.PROPERTY_NAME_MPP_Y]) == pytest.approx(0.5)
        assert float(osr.properties[openslide.PROPERTY_NAME_OBJECTIVE_POWER]) == 20
        thumbnail = osr.associated_images["thumbnail"]
        assert thumbnail.size == (WIDTH // 4, HEIGHT // 4)


def test_tiffslide_reads_levels_mpp_and_power(slide: SyntheticSlide) -> None:
    with tiffslide.TiffSlide(slide.slide_path) as ts:
        assert ts.properties["tiffslide.vendor"] == "aperio"
        assert ts.level_count == 2
        assert ts.level_dimensions == ((WIDTH, HEIGHT), (WIDTH // 4, HEIGHT // 4))
        assert ts.properties["tiffslide.mpp-x"] == pytest.approx(0.5)
        assert ts.properties["tiffslide.mpp-y"] == pytest.approx(0.5)
        assert ts.properties["tiffslide.objective-power"] == pytest.approx(20)
        region = np.asarray(ts.read_region((600, 500), 0, (300, 200)).convert("RGB"))
    with openslide.OpenSlide(str(slide.slide_path)) as osr:
        same = np.asarray(osr.read_region((600, 500), 0, (300, 200)).convert("RGB"))
    assert np.abs(region.astype(int) - same).max() <= 3  # two JPEG decoders, same tiles


def test_pyramid_of_a_larger_slide(folder: Path) -> None:
    big = write_synthetic_slide(folder, "levels", width=5000, height=4200, seed=2,
                                write_masks=False)
    assert not big.has_masks and not big.label_mask_path.exists()
    expected = ((5000, 4200), (1250, 1050), (312, 262))
    with openslide.OpenSlide(str(big.slide_path)) as osr:
        assert osr.level_dimensions == expected
    with tiffslide.TiffSlide(big.slide_path) as ts:
        assert ts.level_dimensions == expected
        assert ts.properties["tiffslide.mpp-x"] == pytest.approx(0.5)


def test_lower_level_is_the_downsampled_level_zero(slide: SyntheticSlide,
                                                   pixels: np.ndarray) -> None:
    level1 = _rgb(slide.slide_path, level=1).astype(float)
    reduced = np.asarray(Image.fromarray(pixels).reduce(4)).astype(float)
    assert level1.shape == reduced.shape
    assert np.abs(level1 - reduced).mean() < 3.0


def test_masks_are_tiled_uint8_deflate_at_level_zero_size(slide: SyntheticSlide) -> None:
    for path in (slide.label_mask_path, slide.nuclei_mask_path):
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            assert page.shape == (HEIGHT, WIDTH)
            assert page.dtype == np.uint8
            assert (page.tilelength, page.tilewidth) == (256, 256)
            assert page.compression == tifffile.COMPRESSION.ADOBE_DEFLATE


def test_tissue_tumour_and_glass_are_all_present(labels: np.ndarray,
                                                 pixels: np.ndarray) -> None:
    assert set(np.unique(labels)) == {0, 1, 2}
    tissue = labels > 0
    assert 0.25 < tissue.mean() < 0.45  # asked for 0.35
    tumour_share = (labels == 2).sum() / tissue.sum()
    assert 0.05 < tumour_share < 0.5
    grey = pixels.mean(axis=2)
    assert grey[~tissue].mean() > 225  # bright glass
    assert grey[tissue].mean() < grey[~tissue].mean() - 40  # stained tissue


def test_tumour_fraction_zero_gives_no_tumour(folder: Path) -> None:
    clean = _write(folder, "no-tumour", width=1024, height=768, tumour_fraction=0.0)
    assert 2 not in np.unique(_mask(clean.label_mask_path))


def test_nuclei_are_the_dark_pixels_of_the_tissue(labels: np.ndarray, nuclei: np.ndarray,
                                                  pixels: np.ndarray) -> None:
    assert set(np.unique(nuclei)) == {0, 1}
    assert not (nuclei.astype(bool) & (labels == 0)).any()  # nuclei only in tissue
    grey = pixels.mean(axis=2)
    in_nuclei = grey[nuclei == 1].mean()
    elsewhere = grey[(nuclei == 0) & (labels > 0)].mean()
    assert in_nuclei < elsewhere - 50


def test_tumour_nuclei_are_denser_than_normal_ones(labels: np.ndarray,
                                                   nuclei: np.ndarray) -> None:
    assert nuclei[labels == 2].mean() > 2 * nuclei[labels == 1].mean()


def test_sites_have_distinct_stains(folder: Path) -> None:
    means = []
    for index, stain in enumerate(SITE_STAINS[:3]):
        made = _write(folder, f"stain-{index}", width=1024, height=768, stain=stain)
        tissue = _mask(made.label_mask_path) == 1
        means.append(_rgb(made.slide_path)[tissue].mean(axis=0))
    for a in range(3):
        for b in range(a + 1, 3):
            assert np.abs(means[a] - means[b]).max() > 15, (a, b, means)


def test_site_morphologies_change_the_tissue_as_declared(folder: Path) -> None:
    """Nucleus density follows each morphology: lobular tumour is sparse, inflamed stroma
    crowded; the first site's tumour is the densest relative to its stroma."""
    density: dict[str, tuple[float, float]] = {}
    for morphology in SITE_MORPHOLOGIES[:3]:
        made = _write(folder, morphology.name, width=2048, height=1536,
                      morphology=morphology, tumour_fraction=0.4)
        labels, nuclei = _mask(made.label_mask_path), _mask(made.nuclei_mask_path)
        density[morphology.name] = (nuclei[labels == 1].mean(), nuclei[labels == 2].mean())
    solid, lobular, inflamed = density["solid"], density["lobular"], density["inflamed"]
    assert lobular[1] < 0.5 * solid[1]  # fewer, smaller tumour nuclei
    assert inflamed[0] > 2 * solid[0]  # crowded normal tissue
    ratios = {name: tumour / normal for name, (normal, tumour) in density.items()}
    assert ratios["solid"] > 2 * max(ratios["lobular"], ratios["inflamed"]), ratios


def test_same_arguments_give_identical_files(folder: Path, slide: SyntheticSlide,
                                             pixels: np.ndarray) -> None:
    again = _write(folder / "again", "slide", workers=1)  # the output ignores the workers
    assert np.array_equal(_rgb(again.slide_path), pixels)
    for a, b in ((slide.slide_path, again.slide_path),
                 (slide.label_mask_path, again.label_mask_path),
                 (slide.nuclei_mask_path, again.nuclei_mask_path)):
        assert _sha(a) == _sha(b)
    other = _write(folder / "other", "slide", seed=12)
    assert not np.array_equal(_mask(other.label_mask_path), _mask(slide.label_mask_path))


def test_no_seams_at_tile_borders(folder: Path, slide: SyntheticSlide, labels: np.ndarray,
                                  nuclei: np.ndarray, pixels: np.ndarray) -> None:
    # Content is a function of level-0 coordinates alone: tiling differently changes nothing.
    wide = _write(folder, "tiles-512", tile_size=512)
    assert np.array_equal(_mask(wide.nuclei_mask_path), nuclei)
    assert np.array_equal(_mask(wide.label_mask_path), labels)
    assert np.abs(_rgb(wide.slide_path).astype(float) - pixels).mean() < 1.0  # JPEG only
    # Nuclei reaching a tile's last column go on in the next tile as often as they go on
    # from any column to the next inside a tile.
    n = nuclei.astype(bool)
    borders = np.arange(256, WIDTH, 256)

    def goes_on(left: np.ndarray) -> float:
        return float((n[:, left] & n[:, left + 1]).sum() / n[:, left].sum())

    assert goes_on(borders - 1) > 0.8
    assert goes_on(borders - 1) == pytest.approx(goes_on(borders - 129), abs=0.05)


def test_read_mask_region_across_tiles(slide: SyntheticSlide, nuclei: np.ndarray) -> None:
    x, y, w, h = 200, 230, 130, 70  # straddles the tile corner at (256, 256)
    window = read_mask_region(slide.nuclei_mask_path, x, y, w, h)
    assert window.shape == (h, w) and window.dtype == np.uint8
    assert np.array_equal(window, nuclei[y : y + h, x : x + w])
    left = read_mask_region(slide.nuclei_mask_path, x, y, 56, h)
    right = read_mask_region(slide.nuclei_mask_path, x + 56, y, w - 56, h)
    assert np.array_equal(np.hstack([left, right]), window)


@pytest.mark.parametrize("box", [(-1, 0, 10, 10), (0, 0, 0, 5), (WIDTH - 5, 0, 10, 10),
                                 (0, HEIGHT, 1, 1)])
def test_read_mask_region_refuses_windows_outside(slide: SyntheticSlide,
                                                  box: tuple[int, int, int, int]) -> None:
    with pytest.raises(RegionError):
        read_mask_region(slide.label_mask_path, *box)


@pytest.mark.parametrize("bad", [dict(tile_size=100), dict(tissue_fraction=0.0),
                                 dict(tissue_fraction=0.95), dict(jpeg_quality=0),
                                 dict(width=10), dict(tumour_fraction=0.9), dict(mpp=0.0)])
def test_bad_arguments_are_refused(folder: Path, bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        _write(folder, "bad", **bad)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failure_leaves_no_files_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          workers: int) -> None:
    from pathloop.client.sample._render import TileRenderer

    render = TileRenderer.render
    calls = []

    def failing(self: TileRenderer, x0: int, y0: int) -> object:
        calls.append((x0, y0))
        if len(calls) == 10:
            raise RuntimeError("disk on fire")
        return render(self, x0, y0)

    monkeypatch.setattr(TileRenderer, "render", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        _write(tmp_path, "doomed", workers=workers)
    assert list(tmp_path.iterdir()) == []


def test_make_sample_sites_makes_three_sites_once(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    sites = make_sample_sites(tmp_path, size=1024, seed=5)
    assert list(sites) == ["site-a", "site-b", "site-c"]
    assert [len(slides) for slides in sites.values()] == [2, 2, 2]
    stains = [slides[0].stain for slides in sites.values()]
    assert stains == list(SITE_STAINS[:3])
    assert [slides[0].morphology for slides in sites.values()] == list(SITE_MORPHOLOGIES[:3])
    every = [s for slides in sites.values() for s in slides]
    assert len({s.seed for s in every}) == len(every)
    for made in every:
        assert made.slide_path.parent.name in sites
        assert (made.width, made.height) == (1024, 768)
        for path in (made.slide_path, made.label_mask_path, made.nuclei_mask_path):
            assert path.is_file()
        record = json.loads(made.slide_path.with_suffix(".json").read_text())
        assert record["seed"] == made.seed and record["stain"]["name"] == made.stain.name

    # A second call finds every slide: nothing is rendered (a render would raise) or
    # rewritten.
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}

    def no_render(*args: object, **kwargs: object) -> None:
        raise AssertionError("a slide that exists was rendered again")

    from pathloop.client.sample._render import TileRenderer

    with monkeypatch.context() as patched:
        patched.setattr(TileRenderer, "render", no_render)
        assert make_sample_sites(tmp_path, size=1024, seed=5) == sites
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == stamps

    # A missing file, or other parameters, make the slide again.
    sites["site-b"][1].nuclei_mask_path.unlink()
    make_sample_sites(tmp_path, size=1024, seed=5)
    assert sites["site-b"][1].nuclei_mask_path.is_file()
    assert sites["site-a"][0].slide_path.stat().st_mtime_ns == stamps[sites["site-a"][0]
                                                                     .slide_path]
    changed = make_sample_sites(tmp_path, n_sites=1, slides_per_site=1, size=1024, seed=6)
    assert changed["site-a"][0].seed != sites["site-a"][0].seed


def test_make_sample_sites_refuses_more_sites_than_stains(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        make_sample_sites(tmp_path, n_sites=len(SITE_STAINS) + 1, size=512)


_MEMORY_PROBE = textwrap.dedent("""
    import resource, sys
    from pathlib import Path
    from pathloop.client.sample import write_synthetic_slide
    write_synthetic_slide(Path(sys.argv[1]), "big", width=16384, height=16384, seed=3,
                          tissue_fraction=0.3)
    # getrusage's ru_maxrss survives fork + exec, so it would report the (large) pytest
    # process; the high-water mark of this process's own memory map does not.
    try:
        with open("/proc/self/status") as status:
            print([line for line in status if line.startswith("VmHWM:")][0].split()[1])
    except OSError:
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB
""")


def test_writing_streams_in_bounded_memory(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(tmp_path)],
                          capture_output=True, text=True, check=True, timeout=300)
    peak_mib = int(done.stdout.split()[-1]) / 1024
    # A level of 16384² RGB alone is 768 MiB; the generator keeps a few tile rows.
    assert peak_mib < 300, f"peak RSS {peak_mib:.0f} MiB"
    with openslide.OpenSlide(str(tmp_path / "big.svs")) as osr:
        assert osr.level_dimensions[-1] == (256, 256)
        assert osr.level_count == 4
