"""rnem-bench: datasets, reference models, evaluator and leaderboards around Relational N-EM."""

__version__ = "0.1.0"
