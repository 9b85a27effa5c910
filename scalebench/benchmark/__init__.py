"""The protocol of every task: train on a build's training set, select on its validation set, test at every
scale (``protocol.py``, with ``engine.py`` and the tasks of ``tasks/``)."""
