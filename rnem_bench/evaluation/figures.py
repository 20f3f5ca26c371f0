"""Figures of a trained run: the paper's figure 2 for one sequence, a rollout GIF, training curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rnem_bench.data.render import palette
from rnem_bench.errors import RnemBenchError
from rnem_bench.protocol import SIM_OBSERVE, SIM_STEPS



def _rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=-1)


def figure2_rows(features: np.ndarray, inputs: np.ndarray, psi: np.ndarray, gamma: np.ndarray,
                 attention: np.ndarray | None) -> list[tuple[str, np.ndarray]]:
    """Rows of figure 2 as (label, (T, H, W, 3) float RGB in [0, 1]).

    features (T+1, H, W) true frames; inputs (T, H, W) noisy inputs; psi, gamma (T, K, H, W);
    attention (T, K, K) with alpha[k, i] the attention of focus k on context i.
    """
    T, K = psi.shape[:2]
    colours = palette(K)[1:].astype(np.float32) / 255  # (K, 3), one colour per component
    rows = [("ground truth t+1", _rgb(features[1:].astype(np.float32))), ("noisy input t", _rgb(inputs.astype(np.float32)))]
    for k in range(K):
        img = _rgb(psi[:, k])  # the focus reconstruction in white
        if attention is not None:
            # colour each context object i by alpha_ki (paper: "Attention" in section 4)
            others = np.einsum("ti,tihw,ic->thwc", attention[:, k], psi, colours)
            img = np.clip(img * 0.6 + others, 0, 1)
        rows.append((f"psi_{k + 1}", img))
    rows.append(("gamma", np.einsum("tkhw,kc->thwc", gamma, colours)))
    rows.append(("total prediction", _rgb((gamma * psi).sum(axis=1))))
    return rows


def mosaic(rows: list[tuple[str, np.ndarray]], pad: int = 1) -> np.ndarray:
    """Stack rows of frames into one uint8 image with grey separators."""
    lines = []
    for _, frames in rows:
        T, H, W, _ = frames.shape
        line = np.full((H, T * (W + pad), 3), 0.35, np.float32)
        for t in range(T):
            line[:, t * (W + pad) : t * (W + pad) + W] = frames[t]
        lines.append(line)
        lines.append(np.full((pad, line.shape[1], 3), 0.35, np.float32))
    return (np.concatenate(lines[:-1]) * 255).astype(np.uint8)


def save_figure2(rows: list[tuple[str, np.ndarray]], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img = mosaic(rows)
    H = rows[0][1].shape[1]
    fig = plt.figure(figsize=(max(6, img.shape[1] / 40), img.shape[0] / 40 + 0.8))
    ax = fig.add_axes([0.12, 0.02, 0.87, 0.9])
    ax.imshow(img, interpolation="nearest")
    ax.set_yticks([(H + 1) * i + H / 2 for i in range(len(rows))], [label for label, _ in rows], fontsize=8)
    ax.set_xticks([])
    ax.set_title(title, fontsize=9)
    fig.savefig(out, dpi=100, bbox_inches="tight", pad_inches=0.05)  # the mosaic's aspect fixes the axes: crop the rest
    plt.close(fig)


def save_curves(log: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    epochs = [e["epoch"] for e in log]
    for key in ("train_loss", "valid_loss"):
        if all(key in e for e in log):
            ax.plot(epochs, [e[key] for e in log], marker="o", ms=3, label=key.replace("_", " "))
    ax.set_xlabel("epoch")
    ax.set_ylabel("N-EM loss")
    handles, labels = ax.get_legend_handles_labels()
    # Grouping beside the loss (logged by runs since validation ARI was added): when a run leaves the
    # symmetric plateau, and how its grouping moves with its loss, read off one figure.
    aris = [(key, label) for key, label in (("valid_ari_mean", "valid ARI (mean)"), ("valid_ari_last", "valid ARI (last step)"))
            if any(key in e for e in log)]
    if aris:
        right = ax.twinx()
        for (key, label), style in zip(aris, ("--", ":")):
            points = [(e["epoch"], e[key]) for e in log if key in e]
            right.plot(*zip(*points), color="tab:green", ls=style, marker="s", ms=3, label=label)
        right.set_ylim(0, 1)
        right.set_ylabel("ARI")
        more, more_labels = right.get_legend_handles_labels()
        handles, labels = handles + more, labels + more_labels
    ax.legend(handles, labels, fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


GROUPING_CURVES = (("valid_ari_mean", "ARI (mean)", "tab:green", "-"), ("valid_ari_last", "ARI (last step)", "tab:green", ":"),
                   ("valid_merge_rate", "merge rate", "tab:red", "-"), ("valid_merge_rate_apart", "merge rate, apart", "tab:red", ":"),
                   ("valid_split_rate", "split rate", "tab:blue", "-"))


def save_grouping_curves(points: list[dict], out: Path, title: str = "") -> None:
    """Validation grouping against optimiser updates: ARI, merge and split rates (late steps), from
    probes.jsonl (every ``probe_every`` updates) or, without probes, the epochs' log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for key, label, color, style in GROUPING_CURVES:
        xy = [(p["updates"], p[key]) for p in points if key in p and "updates" in p]
        if xy:
            ax.plot(*zip(*xy), color=color, ls=style, marker="o", ms=2, label=label)
    ax.set_ylim(0, 1)
    ax.set_xlabel("updates")
    ax.set_ylabel("validation, late steps")
    if title:
        ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def show_run(rundir: Path, index: int, out: Path, dataset: str | Path | None = None) -> list[Path]:
    """Figure 2 PNG of test sequence ``index`` of ``dataset`` (default: the run's own), its rollout
    GIF and the training curves PNG."""
    import imageio.v3 as iio

    from rnem_bench.data.store import open_dataset
    from rnem_bench.models import predict, rollout
    from rnem_bench.models.nem import bitflip
    from rnem_bench.io import read_jsonl
    from rnem_bench.training.checkpoint import PROBES, load_run, read_log

    rundir, out = Path(rundir), Path(out)
    model, cfg = load_run(rundir)
    ds = open_dataset(dataset or cfg.dataset)
    split = "test" if "test" in ds.counts else next(iter(ds.counts))
    n = ds.counts[split]
    if not 0 <= index < n:
        raise RnemBenchError(f"--index {index} is out of range: split '{split}' of {ds.path} has {n} sequences")
    feats = torch.from_numpy(ds.array(split, "features")[index : index + 1])
    actions = torch.from_numpy(ds.array(split, "actions")[index : index + 1]).long() if cfg.use_actions else None
    pred = predict(model, feats, cfg.k, cfg.noise, actions=actions, seed=cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)  # the same noise predict() drew first
    inputs = bitflip(feats[:, :-1].float(), cfg.noise, gen)[0].numpy()
    attention = pred["attention"][0].numpy() if "attention" in pred else None
    rows = figure2_rows(feats[0].numpy(), inputs, pred["psi"][0].numpy(), pred["gamma"][0].numpy(), attention)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_figure2(rows, out, f"{cfg.model} K={pred['psi'].shape[2]}  {ds.path.name} {split}[{index}]")
    written = [out]
    frames = feats.shape[1]
    if frames >= SIM_OBSERVE + SIM_STEPS + 1:
        sim = rollout(model, feats, cfg.k, SIM_OBSERVE, SIM_STEPS, actions=actions, seed=cfg.seed, noise=cfg.noise)[0].numpy()
        truth = feats[0, : SIM_OBSERVE + SIM_STEPS + 1].float().numpy()
        # observed frames 0..9, frame 10 (predicted but not part of the rollout output) grey, then
        # the simulated frames 11..20
        shown = np.concatenate([truth[:SIM_OBSERVE], np.full_like(truth[:1], 0.5), sim])
        sep = np.full((truth.shape[0], truth.shape[1], 2), 0.5, np.float32)
        gif = np.concatenate([truth, sep, shown], axis=2)
        scale = max(1, 192 // truth.shape[1])
        gif = (gif.repeat(scale, 1).repeat(scale, 2) * 255).astype(np.uint8)
        gif_path = out.with_name(out.stem + "_rollout.gif")
        iio.imwrite(gif_path, gif, duration=150, loop=0)
        written.append(gif_path)
    log = read_log(rundir)
    if log:
        curves = out.with_name("training_curves.png")
        save_curves(log, curves)
        written.append(curves)
    probes = read_jsonl(rundir / PROBES)
    points = probes or log
    if any("valid_merge_rate" in p for p in points):
        grouping = out.with_name("grouping_curves.png")
        save_grouping_curves(points, grouping, f"{rundir.name}: {'probes' if probes else 'epochs'}")
        written.append(grouping)
    return written
