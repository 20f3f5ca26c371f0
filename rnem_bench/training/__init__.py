"""Training the reference models (reproducing the paper is the ``rnem_bench.reproduce`` package).

- ``config.py``: ``RunConfig`` (a run's config.json) and the presets (paper, quick, tiny);
- ``resolve.py``: from command-line input (task or path, preset, flags) to a resolved RunConfig;
- ``step.py``: one update (forward, loss, backward, Adam), run eagerly or captured as a CUDA graph;
- ``harness.py``: the training loop (``train``), exact resume, early stopping, validation ARI, DDP;
- ``checkpoint.py``: run-dir files (atomic writes and safe reading live in ``rnem_bench.io``), ``load_run``;
- ``commands.py``: ``rnem-bench run``.
"""
