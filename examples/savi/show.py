"""What a SAVi run sees and predicts, on a few validation sequences, drawn to one PNG.

    python examples/savi/show.py runs/savi-mini-balls4-k5-seed0 --task mini-balls4 --out savi-show.png

One row per sequence: at two steps t, the true frame t + 1, the composite frame predicted for it
from frames 0..t (the board's `prediction`), and the argmax of its masks (the board's `gamma`,
one colour per slot). Validation split only: nothing here looks at the test split.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from curves import save  # noqa: E402
from model import bitflip, composite  # noqa: E402
from train import load_model, open_task  # noqa: E402


def draw(run: Path, task: str, out: Path, sequences: int = 4, steps: tuple[int, ...] = (5, 15),
         k: int | None = None) -> Path:
    model, cfg = load_model(run, "best")
    k = k or cfg["slots"]
    frames = torch.from_numpy(open_task(task).array("valid", "features")[:sequences]).float()  # (S, T+1, H, W)
    T = frames.shape[1] - 1
    gen = torch.Generator().manual_seed(cfg["seed"])
    with torch.no_grad():
        states = model(bitflip(frames[:, :T], cfg["noise"], gen), k, gen)["predicted"]
        predicted, masks = composite(*model.decode(states))                  # (S, T, H, W), (S, T, K, H, W)
    fig, axes = plt.subplots(sequences, 3 * len(steps), figsize=(1.5 * 3 * len(steps), 1.5 * sequences),
                             squeeze=False)
    for i in range(sequences):
        for j, t in enumerate(steps):
            panels = [(frames[i, t + 1].numpy(), "gray", f"frame {t + 1}"),
                      (predicted[i, t].numpy(), "gray", f"predicted from 0..{t}"),
                      (masks[i, t].argmax(0).numpy(), "tab10", "slot (argmax mask)")]
            for c, (image, cmap, title) in enumerate(panels):
                ax = axes[i, 3 * j + c]
                ax.imshow(image, cmap=cmap, vmin=0, vmax=1 if cmap == "gray" else 9, interpolation="nearest")
                ax.set_xticks([]), ax.set_yticks([])
                if i == 0:
                    ax.set_title(title, fontsize=7)
    fig.suptitle(f"{run.name} on {task} (valid, K={k})", fontsize=9)
    return save(fig, out, dpi=100)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Draw a SAVi run's predictions and masks on validation sequences.")
    p.add_argument("run", type=Path, help="run directory (from train.py)")
    p.add_argument("--task", required=True, help="task name or dataset path (its valid split is read)")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--sequences", type=int, default=4)
    p.add_argument("--slots", type=int, default=None, help="K (default: the run's)")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    print(draw(a.run, a.task, a.out, a.sequences, k=a.slots))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
