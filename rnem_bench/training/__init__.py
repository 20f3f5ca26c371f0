"""Training and reproducing the reference models.

- ``config.py``: ``RunConfig`` (a run's config.json) and the presets (paper, quick, tiny);
- ``resolve.py``: from command-line input (task or path, preset, flags) to a resolved RunConfig;
- ``harness.py``: the training loop (``train``), exact resume, early stopping, DDP;
- ``checkpoint.py``: run-dir files, atomic writes, ``load_run``;
- ``commands.py``: ``rnem-bench run``;
- ``baselines.py`` and ``reproduce.py``: the recipes in ``baselines/`` and ``rnem-bench reproduce``.
"""
