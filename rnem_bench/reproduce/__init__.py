"""Reproducing the paper: ``rnem-bench reproduce`` trains the reference runs, scores them and judges
the paper's claims on them. Read bottom-up:

    reference_runs.py  the reference runs (top-level ``baselines/*.toml``, package data): model, task, K, caps, seeds
    jobs.py            which (reference run, seed) to train, and training them one at a time
    scoring.py         their result files (fresh, or read back from a board with ``--from-board``)
    claims.py          the paper's seven claims, judged on mean ± sd over seeds
    report.py          the table beside the paper's figures, the claims, the JSON summary
    check.py           does a rerun reproduce a committed seed? (``--check-against``)
    commands.py        the click command
"""
