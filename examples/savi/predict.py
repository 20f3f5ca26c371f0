"""Write a trained SAVi run's predictions of a task's test split, for `rnem-bench score`.

    python examples/savi/predict.py runs/savi-mini-balls4-k5-seed0 --task mini-balls4
    python examples/savi/predict.py runs/savi-mini-balls4-k5-seed0 --task mini-balls678 --slots 8

The same weights serve any K: every slot is drawn from the one learned Gaussian. The store
(default RUN/predictions-TASK.zarr) holds prediction, gamma and simulation (train.predict_split).
"""

from __future__ import annotations

import argparse
import sys

import torch

from train import write_run_predictions


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Write a SAVi run's predictions of a task's test split.")
    p.add_argument("run", help="run directory (from train.py)")
    p.add_argument("--task", required=True, help="task name written into the store (its canonical dataset is read)")
    p.add_argument("--dataset", default=None, help="read this dataset instead of the task's canonical one")
    p.add_argument("--slots", type=int, default=None, help="K at test time (default: the run's)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best",
                   help="best: the lowest validation loss (default)")
    p.add_argument("--split", default="test")
    p.add_argument("--noise", type=float, default=None, help="input bit-flip probability (default: the run's)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--limit", type=int, default=None, help="first N sequences only (not leaderboard-valid)")
    p.add_argument("--out", default=None, help="predictions store (default RUN/predictions-TASK.zarr)")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    path = write_run_predictions(a.run, a.task, dataset=a.dataset, k=a.slots, split=a.split, which=a.checkpoint,
                                 noise=a.noise, batch_size=a.batch_size, limit=a.limit, out=a.out)
    print(f"wrote {path}\nscore it: rnem-bench score {path} --task {a.task}"
          + (f" --dataset {a.dataset}" if a.dataset else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
