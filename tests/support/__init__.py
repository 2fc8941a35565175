"""The tests' shared doubles and helpers, one home for each (on pytest's ``pythonpath``,
type-checked by mypy with the packages).

:mod:`~.folds`
    :class:`~.folds.ThresholdFolds`, the one numpy fake of the ``FoldPredictor`` seam.
:mod:`~.records`
    slide and raster records put straight into a store.
:mod:`~.site`
    a real site over a real slide (tiled, predicted by the fake folds, ranked) and the site
    service running in a thread.
:mod:`~.flower`
    :class:`~.flower.FakeGrid`, an in-process Flower Grid whose sites are functions.
:mod:`~.server_sites`
    fake sites, an initial model and run settings for the aggregation server's tests.
:mod:`~.monuseg_sites`
    sites built from real MoNuSeg tiles for the federation tests.
:mod:`~.nnunet`
    MoNuSeg tiles and training a real tiny nnU-Net.
:mod:`~.viewer_page`
    driving the viewer in a browser like a pathologist.
"""
