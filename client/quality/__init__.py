"""Annotation quality: AI²Seg's inspection of instance annotations (numpy + scikit-image).

=================== ===================================================================
``labels``          checks of ``(H, W)`` int32 instance label arrays; bounding boxes
``noise``           :func:`simulate_noise`: the paper's 9 noise types with ratio β, the
                    truth of which instances are noisy (:class:`NoisyAnnotation`)
``distortions``     the per-instance noise types, one function each
``matching``        :func:`overlaps` in one pass over the pixels; :func:`match_instances`
                    greedy one-to-one by IoU, and its all-pairs peer
``inspection``      states (odd / additional / missing), scores with α and γ, an image's
                    overall score, the order of images, the truth of simulated noise
``roc``             :func:`roc_auc` (Mann–Whitney, ties averaged) and :func:`roc_curve`
``instances``       the instance model: 3-class targets, training through the nnU-Net
                    adapter, TTA prediction and the seeded watershed
=================== ===================================================================

Nothing here imports torch, nnU-Net or a web framework: predictions arrive as label arrays
(``instances`` reaches the networks through the adapter's :class:`FoldPredictor`).
"""

from pathloop.client.quality.inspection import (
    STATES,
    ImageInspection,
    InstanceState,
    assign_states,
    inspect_image,
    noise_truth,
    order_images,
    overall_score,
    score_instances,
)
from pathloop.client.quality.matching import (
    Matching,
    Overlaps,
    match_instances,
    match_instances_all_pairs,
    overlaps,
)
from pathloop.client.quality.noise import (
    NOISE_TYPES,
    NoisyAnnotation,
    affected_count,
    simulate_noise,
)
from pathloop.client.quality.roc import roc_auc, roc_curve

__all__ = [
    "NOISE_TYPES",
    "STATES",
    "ImageInspection",
    "InstanceState",
    "Matching",
    "NoisyAnnotation",
    "Overlaps",
    "affected_count",
    "assign_states",
    "inspect_image",
    "match_instances",
    "match_instances_all_pairs",
    "noise_truth",
    "order_images",
    "overall_score",
    "overlaps",
    "roc_auc",
    "roc_curve",
    "score_instances",
    "simulate_noise",
]
