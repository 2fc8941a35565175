"""Tissue detection and tile grids at a resolution in µm/px."""

from pathloop.client.tiling.grid import TileGrid, TileSpec
from pathloop.client.tiling.stream import (
    Tile,
    background_fraction,
    candidate_tiles,
    iter_tissue_tiles,
)
from pathloop.client.tiling.tissue import TissueMask, compute_tissue_mask, detect_tissue

__all__ = [
    "Tile",
    "TileGrid",
    "TileSpec",
    "TissueMask",
    "background_fraction",
    "candidate_tiles",
    "compute_tissue_mask",
    "detect_tissue",
    "iter_tissue_tiles",
]
