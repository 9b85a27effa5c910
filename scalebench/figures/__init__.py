"""Figures of scale-generalisation results: every figure that scalebench draws, from results records only.

- :mod:`scalebench.figures.style`: the house style (rc parameters, fixed file metadata, the Okabe & Ito
  palette and :func:`~scalebench.figures.style.model_colour`, saving, CSV writing, the test-scale axis) and the
  labels (builds, models, configurations, seeds).
- :mod:`scalebench.figures.curves`: a task's score against test scale, one curve per configuration with a
  mean ± sample std band over two or more seeds; the figure of one run, of several seeds, of the demo, of the
  paper (``scalebench plot curves``) and the segmentation mIoU curve.
- :mod:`scalebench.figures.selection`: scale-selection heatmaps, one panel per configuration.
- :mod:`scalebench.figures.summary`: the field at a glance (``scalebench plot summary``): one row per
  configuration, mean accuracy and worst / train-scale ratio, mean ± sd over seeds, best first.
- :mod:`scalebench.figures.segmentation`: what only segmentation has (learned σ per N-Jet layer, triptychs).

The package reads results through :mod:`scalebench.results` and depends on nothing else of scalebench but
``checks`` and ``fileio``; running a model (to get the images of a triptych) is the caller's job. Tables are
pandas data frames in long format; heatmaps and the summary's points are drawn by seaborn; every figure is drawn through matplotlib's
object API (no pyplot state) and written with fixed metadata, so that the same numbers give the same bytes.

Not here yet: figures of the training history (loss and validation score per epoch).
"""
