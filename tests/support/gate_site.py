"""A site for the adoption-gate tests: real (untrained) nnU-Net folds whose output is forced.

:func:`forced_arrays` zeroes the ensemble's segmentation heads and biases them towards one
label, so a version predicts that label everywhere: on tiles with some foreground an
all-foreground version scores a Dice above 0 and an all-background one exactly 0, a clear
"worse" without training anything. :func:`gate_site` imports an all-foreground model as the
site's current one and writes held-out tiles (discs on pink, :func:`synthetic_cases`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pathloop.client.segmentation import ensemble_arrays, ensemble_plans, write_ensemble
from pathloop.client.settings import FederationSettings, SiteSettings
from pathloop.client.store import ModelVersionRecord, Store
from pathloop.client.usecases.models import import_model
from pathloop.server.contract import PROTOCOL_VERSION, ConfigKey, plans_digest
from support.monuseg_sites import write_tiles
from support.nnunet import NUCLEI, TILE_MPP, random_model_folder, synthetic_cases

Arrays = dict[str, NDArray[np.float32]]


def forced_arrays(arrays: Arrays, label: int) -> Arrays:
    """``arrays`` with every segmentation head predicting ``label`` everywhere."""
    forced = dict(arrays)
    for key, value in arrays.items():
        if "seg_layers" in key:
            head = np.zeros_like(value)
            if key.endswith(".bias"):
                head[label] = 10.0
            forced[key] = head
    return forced


def gate_site(root: Path, **federation: Any) -> tuple[SiteSettings, ModelVersionRecord, Arrays]:
    """A site whose current model predicts foreground everywhere; its settings, that model
    version and its arrays. ``federation`` overrides ``[federation]`` settings."""
    template = random_model_folder(root / "template", NUCLEI, n_folds=2)
    foreground = forced_arrays(ensemble_arrays(template), 1)
    shipped = write_ensemble(foreground, template, root / "shipped")
    images, masks = write_tiles(synthetic_cases(3, size=64, extra=False), root / "held-out")
    fed = {"training_images": images, "training_masks": masks, "held_out_images": images,
           "held_out_masks": masks, "mpp": TILE_MPP, "labels": ("background", "nucleus"),
           "rerank_k": 5} | federation
    settings = SiteSettings(site_id="gate", data_dir=root / "data",
                            federation=FederationSettings(**fed))
    with Store.open(settings) as store:
        initial = import_model(settings, store, shipped, "initial")
    return settings, initial, foreground


def round_config(settings: SiteSettings, version: ModelVersionRecord, global_version: int,
                 **settings_of_round: object) -> dict[str, object]:
    """A server's round config for ``global_version`` under the site model's plans."""
    assert version.weights_uri is not None
    plans = ensemble_plans(version.weights_uri)
    return {ConfigKey.PROTOCOL: PROTOCOL_VERSION, ConfigKey.PLANS: json.dumps(plans),
            ConfigKey.PLANS_SHA256: plans_digest(plans),
            ConfigKey.GLOBAL_VERSION: global_version, ConfigKey.ROUND: global_version,
            **settings_of_round}
