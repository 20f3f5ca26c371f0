"""Pictures of dataset sequences: frames with every object in its own colour."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnem_bench.data.store import Dataset
from rnem_bench.dataset_format import OVERLAP
from rnem_bench.errors import RnemBenchError


def palette(n: int) -> np.ndarray:
    """(n + 1, 3) uint8 colours: index 0 black background, 1..n distinct hues (tab10, then tab20)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    colours = [(0.0, 0.0, 0.0)] + [cmap(i % cmap.N)[:3] for i in range(n)]
    return (np.array(colours) * 255).astype(np.uint8)


def colour_frames(features: np.ndarray, groups: np.ndarray | None, curtain: np.ndarray | None = None) -> np.ndarray:
    """(T, H, W) frames -> (T, H, W, 3) RGB: objects by group id, overlap white, hidden parts dimmed,
    the curtain outlined in grey; plain white-on-black when there are no groups."""
    if groups is None:
        return np.repeat((features * 255).astype(np.uint8)[..., None], 3, axis=-1)
    ids = np.where(groups == OVERLAP, 0, groups)
    rgb = palette(int(ids.max()) if ids.size else 0)[ids]
    rgb[groups == OVERLAP] = 255
    hidden = (groups > 0) & (features == 0)  # behind the curtain: recorded but not visible
    rgb[hidden] = rgb[hidden] // 3
    if curtain is not None:
        edge = curtain.astype(bool) & ~_erode(curtain.astype(bool))
        rgb[:, edge] = 128
    return rgb


def _erode(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return inner


def save_sequence(ds: Dataset, split: str, index: int, out: Path) -> Path:
    """Write sequence ``index`` as a PNG strip (features above, groups below) or an animated GIF."""
    import imageio.v3 as iio

    n = ds.counts[split]
    if not 0 <= index < n:
        raise RnemBenchError(f"--index {index} is out of range: split '{split}' has {n} sequences")
    features = ds.array(split, "features")[index]
    groups = ds.array(split, "groups")[index] if ds.has_groups else None
    curtain = ds.array(split, "curtain")[index] if "curtain" in ds.arrays else None
    coloured = colour_frames(features, groups, curtain)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".gif":
        scale = max(1, 256 // features.shape[-1])
        frames = coloured.repeat(scale, axis=1).repeat(scale, axis=2)
        iio.imwrite(out, frames, duration=120, loop=0)
    elif out.suffix.lower() == ".png":
        plain = colour_frames(features, None)
        pad = np.full((plain.shape[0], plain.shape[1], 1, 3), 64, np.uint8)
        top = np.concatenate([np.concatenate([f, p], axis=1) for f, p in zip(plain, pad)], axis=1)
        bottom = np.concatenate([np.concatenate([f, p], axis=1) for f, p in zip(coloured, pad)], axis=1)
        strip = np.concatenate([top, np.full((1, top.shape[1], 3), 64, np.uint8), bottom], axis=0)
        iio.imwrite(out, strip.repeat(2, axis=0).repeat(2, axis=1))
    else:
        raise RnemBenchError(f"--out must end in .png or .gif, got '{out.name}'")
    return out
