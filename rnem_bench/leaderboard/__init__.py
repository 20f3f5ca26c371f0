"""Leaderboards: acceptance rules (board.py) and rendering (render.py)."""
