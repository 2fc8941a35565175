"""Experiments on real annotated data that reproduce the seed papers' protocols.

``uga_eval`` runs the UGA paper's experiment (seed 004) on MoNuSeg through the site node's
own use cases, configured and recorded by ``uga_records``; ``uga_report`` turns its result
into a markdown table and a PNG plot.
"""

from pathloop.client.experiments.monuseg import MONUSEG_MPP, MonusegImage, list_images
from pathloop.client.experiments.uga_eval import run_uga_eval
from pathloop.client.experiments.uga_records import ArmResult, UgaEvalConfig, UgaEvalResult
from pathloop.client.experiments.uga_report import write_report

__all__ = [
    "MONUSEG_MPP",
    "ArmResult",
    "MonusegImage",
    "UgaEvalConfig",
    "UgaEvalResult",
    "list_images",
    "run_uga_eval",
    "write_report",
]
