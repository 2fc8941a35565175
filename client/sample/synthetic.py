"""Synthetic H&E whole-slide images with ground truth, for the demo and the benchmarks.

A slide is a procedural function of its level-0 pixel coordinates: a few large smooth tissue
blobs on glass, smaller tumour blobs inside them, nuclei on a hashed cell grid (in tumour:
larger, denser, darker, irregular), coloured by Beer–Lambert absorption of a site's
haematoxylin and eosin. It is written tile by tile (never a whole level or mask in memory)
as an Aperio-style pyramidal TIFF that OpenSlide and tiffslide both open, with two tiled
uint8 masks at level-0 size and a JSON sidecar recording how it was made.

Files of a slide called ``name`` in ``directory``:

==========================  =================================================================
``name.svs``                the slide: JPEG tiles, levels downsampled 1, 4, 16, ... until the
                            smallest is under 1024 px, a thumbnail, ``MPP`` and ``AppMag``
``name.labels.tiff``        0 glass, 1 normal tissue, 2 tumour (deflate, tiled)
``name.nuclei.tiff``        1 nucleus pixel, 0 otherwise (deflate, tiled)
``name.json``               the parameters (so that an identical slide is not made twice)
==========================  =================================================================
"""

from __future__ import annotations

import inspect
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import zarr
from numpy.typing import NDArray

from pathloop.client.errors import RegionError
from pathloop.client.sample._layout import OVERHANG
from pathloop.client.sample._render import GLASS_PERIOD, SlideParameters, TileRenderer
from pathloop.client.sample._writer import default_workers, write_slide_files
from pathloop.client.sample.morphology import SITE_MORPHOLOGIES, SiteMorphology
from pathloop.client.sample.stains import SITE_STAINS, SiteStain

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 3
"""Bumped whenever the same parameters would give different pixels (invalidates sidecars)."""


@dataclass(frozen=True)
class SyntheticSlide:
    """A synthetic slide on disk and what it was made from.

    Attributes
    ----------
    slide_path : the pyramidal tiled TIFF (Aperio-style ``.svs``; JPEG tiles).
    label_mask_path : tiled uint8 TIFF at level-0 size: 0 glass, 1 normal tissue, 2 tumour.
    nuclei_mask_path : tiled uint8 TIFF at level-0 size: 1 nucleus pixel, 0 otherwise.
    width, height : level-0 size in pixels.
    mpp : level-0 resolution in µm/px.
    seed : the seed the slide was drawn from.
    stain : the site stain it was coloured with.
    has_masks : whether the two mask files were written (``write_masks``); when False their
        paths name files that do not exist.
    morphology : the site morphology its tissue was drawn with.
    """

    slide_path: Path
    label_mask_path: Path
    nuclei_mask_path: Path
    width: int
    height: int
    mpp: float
    seed: int
    stain: SiteStain
    has_masks: bool = True
    morphology: SiteMorphology = SITE_MORPHOLOGIES[0]


def write_synthetic_slide(
    directory: Path,
    name: str,
    *,
    width: int,
    height: int,
    seed: int,
    stain: SiteStain = SITE_STAINS[0],
    morphology: SiteMorphology = SITE_MORPHOLOGIES[0],
    mpp: float = 0.5,
    tile_size: int = 256,
    tissue_fraction: float = 0.35,
    jpeg_quality: int = 85,
    write_masks: bool = True,
    tumour_fraction: float | None = None,
    workers: int | None = None,
) -> SyntheticSlide:
    """Write a synthetic slide (and its masks) into ``directory``, streaming tile by tile.

    Parameters
    ----------
    directory : folder to write into (created if missing).
    name : base name of the files (``name.svs``, ``name.labels.tiff``, ...).
    width, height : level-0 size in pixels.
    seed : everything random derives from it: same arguments, same pixels.
    stain : the simulated site's stain appearance.
    morphology : the simulated site's tissue morphology.
    mpp : level-0 resolution in µm/px; nuclei and textures have physical sizes.
    tile_size : TIFF tile side in px, a multiple of 64 up to 2048.
    tissue_fraction : fraction of the slide area covered by tissue, in (0, 0.9].
    jpeg_quality : JPEG quality of the slide's tiles, 1-100.
    write_masks : write the label and nuclei masks (the benchmarks may skip them).
    tumour_fraction : fraction of the tissue that is tumour, in [0, 0.8]; None draws it
        from the seed between 0.1 and 0.3.
    workers : threads rendering tiles; None for the machine's cores (at most 4). The output
        does not depend on it.

    Returns
    -------
    SyntheticSlide describing the files written.

    Raises
    ------
    ValueError
        If a size, fraction, quality or the tile size is out of range.
    """
    params = _parameters(width, height, seed, stain, mpp, tile_size, tissue_fraction,
                         tumour_fraction, morphology)
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be in 1..100, got {jpeg_quality}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    slide = _describe(directory, name, params, write_masks)
    partial = [_partial(p) for p in (slide.slide_path, slide.label_mask_path,
                                     slide.nuclei_mask_path)]
    sidecar = _sidecar_path(directory, name)
    sidecar.unlink(missing_ok=True)
    try:
        write_slide_files(TileRenderer(params), partial[0],
                          partial[1] if write_masks else None,
                          partial[2] if write_masks else None, name=name,
                          jpeg_quality=jpeg_quality,
                          workers=workers if workers is not None else default_workers())
        os.replace(partial[0], slide.slide_path)
        if write_masks:
            os.replace(partial[1], slide.label_mask_path)
            os.replace(partial[2], slide.nuclei_mask_path)
    finally:
        for path in partial:
            path.unlink(missing_ok=True)
    sidecar.write_text(json.dumps(_record(params, jpeg_quality, write_masks), indent=2,
                                  sort_keys=True) + "\n")
    logger.info("wrote synthetic slide %s (%dx%d px, seed %d, stain %s)",
                slide.slide_path, width, height, seed, stain.name)
    return slide


def read_mask_region(mask_path: Path, x: int, y: int, width: int, height: int) -> NDArray[np.uint8]:
    """Read a window of a mask at level-0 coordinates, decoding only the tiles it touches.

    Parameters
    ----------
    mask_path : a ``.labels.tiff`` or ``.nuclei.tiff`` of a synthetic slide.
    x, y : top-left corner in level-0 pixels.
    width, height : size of the window in pixels (> 0).

    Returns
    -------
    (height, width) uint8 array of mask values.

    Raises
    ------
    RegionError
        If the window is empty or reaches outside the mask.
    """
    with tifffile.TiffFile(mask_path) as tif:
        page = tif.pages.first
        mask_height, mask_width = page.shape[:2]
        if width <= 0 or height <= 0 or x < 0 or y < 0 or x + width > mask_width \
                or y + height > mask_height:
            raise RegionError(f"{mask_path}: window {width}x{height} at ({x}, {y}) is not "
                              f"inside the {mask_width}x{mask_height} mask")
        with page.aszarr() as store:
            array = zarr.open_array(store, mode="r")
            return np.asarray(array[y : y + height, x : x + width], dtype=np.uint8)


def make_sample_sites(directory: Path, *, n_sites: int = 3, slides_per_site: int = 2,
                      size: int = 4096, seed: int = 0) -> dict[str, list[SyntheticSlide]]:
    """Make (or find) the demo's sample slides: a few per simulated site.

    Site ``i`` is called ``site-a``, ``site-b``, ... and draws all its slides with
    ``SITE_STAINS[i]`` and ``SITE_MORPHOLOGIES[i]``; its slides are written to
    ``directory / site`` as ``site-a-slide-0``, ... with width ``size`` and height
    ``3 * size // 4`` px at 0.5 µm/px and tissue fraction (0.25–0.45 of the slide) and
    tumour fraction (0.25–0.45 of the tissue) drawn from ``seed``. A slide whose files and
    sidecar already exist with the same parameters is not written again.

    Parameters
    ----------
    directory : root folder of the sample slides.
    n_sites : number of sites, at most ``len(SITE_STAINS)``.
    slides_per_site : slides per site.
    size : width of each slide in pixels (>= 256).
    seed : root seed; the same arguments always give the same slides.

    Returns
    -------
    Site name -> its slides, sites in order.
    """
    if not 1 <= n_sites <= len(SITE_STAINS):
        raise ValueError(f"n_sites must be in 1..{len(SITE_STAINS)}, got {n_sites}")
    if slides_per_site < 1:
        raise ValueError(f"slides_per_site must be >= 1, got {slides_per_site}")
    sites: dict[str, list[SyntheticSlide]] = {}
    for site_index in range(n_sites):
        site = f"site-{chr(ord('a') + site_index)}"
        stain = SITE_STAINS[site_index]
        slides = []
        for slide_index in range(slides_per_site):
            rng = np.random.default_rng([seed, site_index, slide_index])
            slide_seed = int(rng.integers(2**31))
            kwargs: dict[str, Any] = dict(
                width=size, height=3 * size // 4, seed=slide_seed, stain=stain,
                morphology=SITE_MORPHOLOGIES[site_index],
                tissue_fraction=round(float(rng.uniform(0.25, 0.45)), 3),
                tumour_fraction=round(float(rng.uniform(0.25, 0.45)), 3))
            name = f"{site}-slide-{slide_index}"
            found = _existing(directory / site, name, kwargs)
            slides.append(found or write_synthetic_slide(directory / site, name, **kwargs))
        sites[site] = slides
    return sites


def _parameters(width: int, height: int, seed: int, stain: SiteStain, mpp: float,
                tile_size: int, tissue_fraction: float, tumour_fraction: float | None,
                morphology: SiteMorphology = SITE_MORPHOLOGIES[0]) -> SlideParameters:
    if width < 64 or height < 64:
        raise ValueError(f"a slide needs at least 64x64 px, got {width}x{height}")
    if not GLASS_PERIOD <= tile_size <= OVERHANG or tile_size % GLASS_PERIOD:
        raise ValueError(f"tile_size must be a multiple of {GLASS_PERIOD} up to {OVERHANG}, "
                         f"got {tile_size}")
    if not 0.05 <= mpp <= 20:
        raise ValueError(f"mpp must be in 0.05..20 µm/px, got {mpp}")
    if not 0 < tissue_fraction <= 0.9:
        raise ValueError(f"tissue_fraction must be in (0, 0.9], got {tissue_fraction}")
    if tumour_fraction is None:
        rng = np.random.default_rng([seed, 99])
        tumour_fraction = round(float(rng.uniform(0.1, 0.3)), 3)
    if not 0 <= tumour_fraction <= 0.8:
        raise ValueError(f"tumour_fraction must be in [0, 0.8], got {tumour_fraction}")
    return SlideParameters(width, height, seed, stain, float(mpp), tile_size,
                           float(tissue_fraction), float(tumour_fraction), morphology)


def _describe(directory: Path, name: str, params: SlideParameters,
              has_masks: bool) -> SyntheticSlide:
    return SyntheticSlide(
        slide_path=directory / f"{name}.svs",
        label_mask_path=directory / f"{name}.labels.tiff",
        nuclei_mask_path=directory / f"{name}.nuclei.tiff",
        width=params.width, height=params.height, mpp=params.mpp, seed=params.seed,
        stain=params.stain, has_masks=has_masks, morphology=params.morphology)


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def _sidecar_path(directory: Path, name: str) -> Path:
    return directory / f"{name}.json"


def _record(params: SlideParameters, jpeg_quality: int, write_masks: bool) -> dict[str, Any]:
    record = asdict(params)
    record["stain"]["haematoxylin"] = list(params.stain.haematoxylin)
    record["stain"]["eosin"] = list(params.stain.eosin)
    record["stain"]["background"] = list(params.stain.background)
    record.update(generator="pathloop.client.sample", version=GENERATOR_VERSION,
                  jpeg_quality=jpeg_quality, write_masks=write_masks)
    return record


def _existing(directory: Path, name: str, kwargs: dict[str, Any]) -> SyntheticSlide | None:
    """The slide if its files exist and its sidecar records what ``kwargs`` would make.

    ``kwargs`` are arguments of :func:`write_synthetic_slide`; those left out take its
    defaults.
    """
    sidecar = _sidecar_path(directory, name)
    if not sidecar.is_file():
        return None
    defaults = {key: parameter.default for key, parameter
                in inspect.signature(write_synthetic_slide).parameters.items()
                if parameter.default is not inspect.Parameter.empty}
    arguments = {**defaults, **kwargs}
    params = _parameters(arguments["width"], arguments["height"], arguments["seed"],
                         arguments["stain"], arguments["mpp"], arguments["tile_size"],
                         arguments["tissue_fraction"], arguments["tumour_fraction"],
                         arguments["morphology"])
    expected = _record(params, arguments["jpeg_quality"], arguments["write_masks"])
    try:
        recorded = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return None
    if recorded != json.loads(json.dumps(expected)):
        return None
    slide = _describe(directory, name, params, has_masks=arguments["write_masks"])
    paths = [slide.slide_path]
    if slide.has_masks:
        paths += [slide.label_mask_path, slide.nuclei_mask_path]
    if not all(path.is_file() for path in paths):
        return None
    logger.info("found synthetic slide %s", slide.slide_path)
    return slide


__all__ = [
    "GENERATOR_VERSION",
    "SITE_MORPHOLOGIES",
    "SITE_STAINS",
    "SiteMorphology",
    "SiteStain",
    "SyntheticSlide",
    "make_sample_sites",
    "read_mask_region",
    "write_synthetic_slide",
]
