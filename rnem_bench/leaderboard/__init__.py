"""Leaderboards, read bottom-up:

    board.py     acceptance rules: entries, their names, validation, submit, the pinned reference scores
    groups.py    rows: entries of one model configuration grouped over seeds, mean ± sample std
    terminal.py  the tables in a terminal (rich), fitted to its width
    plots.py     the figures (relative losses, ARI against the grid floor, simulation per step)
    pages.py     README.md and index.html of a board folder
    commands.py  ``rnem-bench submit`` and ``rnem-bench leaderboard``
"""
