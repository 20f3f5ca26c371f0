"""Evaluation: metrics, the Evaluator (usable without our models), result files, figures."""

from rnem_bench.evaluation.evaluator import EvalConfig, Evaluator
from rnem_bench.evaluation.predictions import score_predictions, write_predictions
from rnem_bench.evaluation.run import evaluate_run

__all__ = ["EvalConfig", "Evaluator", "evaluate_run", "score_predictions", "write_predictions"]
