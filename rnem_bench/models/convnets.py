"""The convolutional encoder and decoder around the recurrent core (paper, appendix A).

Balls (64x64)::                              Space Invaders (84x84)::

    4x4 conv 16 ELU stride 2, LN                 4x4 conv 16 ELU stride 2, LN
    4x4 conv 32 ELU stride 2, LN                 4x4 conv 32 ELU stride 2, LN
    4x4 conv 64 ELU stride 2, LN                 4x4 conv 32 ELU stride 2, LN
    fc 512 ELU, LN                               4x4 conv 32 ELU stride 2, LN
    --- recurrent 250 ---                        fc 512 ELU, LN
    fc 512 ReLU, LN                              --- recurrent 250 ---
    fc 8x8x64 ReLU, LN                           fc 512 ReLU, LN
    NN-resize x2, 4x4 conv 32 ReLU, LN           fc 8x8x64 ReLU, LN
    NN-resize x2, 4x4 conv 16 ReLU, LN           NN-resize, 4x4 conv 32 ReLU, LN  (x2)
    NN-resize x2, 4x4 conv 1 sigmoid             NN-resize, 4x4 conv 16 ReLU, LN
                                                 NN-resize, 4x4 conv 1 sigmoid

Convolutions use TensorFlow's "SAME" padding, as the original code did, so an 84x84 frame
shrinks 84 -> 42 -> 21 -> 11 -> 6. The decoder resizes to the encoder's sizes in reverse
(8 -> 11 -> 21 -> 42 -> 84; 8 -> 16 -> 32 -> 64) so that it ends at the input size; the
appendix's "reshape 2" is that nearest-neighbour resize (no transposed convolutions, to avoid
checkerboard artefacts). Layer norm on a feature map normalises over (C, H, W) with a
per-channel scale and shift, as TensorFlow's ``layer_norm`` did: ``GroupNorm(1, C)``. Every layer
is linear map -> layer norm -> activation, the order of the original code's layer wrappers (the
appendix's "conv 16 ELU ... layer norm" lists the parts, not their order).

Any image size from 8 up works (tests use 16 or 32): sizes other than 84 use the balls layout.

Fast path (exact): a nearest-neighbour resize by exactly x2 followed by a 4x4 "SAME" convolution
(pad 1 before, 2 after) reads each low-resolution pixel up to four times. Output row 2p+r only
ever sees low-resolution rows p-1, p, p+1, with the 4 kernel rows summed into 3 (r = 0: w0,
w1+w2, w3) or 2 (r = 1: w0+w1, w2+w3) taps; the same holds for columns. So the four output phases
(r, s) are 3x3 convolutions of the padded low-resolution map with weights summed from the 4x4
kernel, computed as one convolution with 4x the output channels and interleaved by
``pixel_shuffle``: 9 instead of 16 taps per output pixel on a 4x smaller input, the same
parameters (checkpoints are unchanged) and the same function up to float rounding.
``Decoder.use_reference(True)`` switches back to resize-then-convolve, for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ConvNetConfig:
    image_size: int = 64
    channels: tuple[int, ...] = (16, 32, 64)   # encoder convolutions (decoder mirrors them)
    fc: int = 512                               # fully connected layer on both sides of the core
    decoder_grid: int = 8                       # the decoder's first feature map is grid x grid x 64
    decoder_channels: tuple[int, ...] = (32, 16)  # decoder convolutions before the last 1-channel one

    @classmethod
    def for_image(cls, image_size: int) -> "ConvNetConfig":
        """The appendix's layout for this frame size (84: Space Invaders; else bouncing balls)."""
        if image_size == 84:
            return cls(image_size=84, channels=(16, 32, 32, 32), decoder_channels=(32, 32, 16))
        return cls(image_size=image_size)

    def feature_sizes(self) -> list[int]:
        """Spatial size of the input and of each encoder feature map ("SAME" stride 2: ceil(n/2))."""
        sizes = [self.image_size]
        for _ in self.channels:
            sizes.append(-(-sizes[-1] // 2))
        return sizes


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding (before, after) along one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv(nn.Module):
    """A 4x4 convolution with TensorFlow "SAME" padding for a known input size."""

    def __init__(self, c_in: int, c_out: int, size: int, stride: int, kernel: int = 4):
        super().__init__()
        lo, hi = _same_pad(size, kernel, stride)
        self.pad = (lo, hi, lo, hi)  # F.pad order: left, right, top, bottom
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride)
        if lo == hi:  # symmetric: let the convolution pad (no padded copy of the input)
            self.conv.padding, self.pad = (lo, lo), None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x if self.pad is None else F.pad(x, self.pad))


# Row (and column) tap sums of the x2 phases: phase r of a 4-tap kernel w has taps PHASE_TAPS[r] @ w
# at low-resolution offsets -1, 0, +1.
PHASE_TAPS = torch.tensor([
    [[1., 0., 0., 0.], [0., 1., 1., 0.], [0., 0., 0., 1.]],   # even output rows: w0 | w1 + w2 | w3
    [[0., 0., 0., 0.], [1., 1., 0., 0.], [0., 0., 1., 1.]],   # odd output rows:  0  | w0 + w1 | w2 + w3
])


_TAPS_ON: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}


def _phase_taps(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """PHASE_TAPS on ``device``, copied there once: a copy from host memory inside a CUDA graph
    capture (training/step.py) is not allowed, and the first calls, which copy, run before it."""
    key = (device, dtype)
    if key not in _TAPS_ON:
        _TAPS_ON[key] = PHASE_TAPS.to(device, dtype)
    return _TAPS_ON[key]


def phase_conv_x2(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """conv4x4_SAME(resize_nearest_x2(x)) computed on x directly: (N, C, n, n) -> (N, O, 2n, 2n)."""
    taps = _phase_taps(weight.device, weight.dtype)
    # (O, C, 4, 4) -> (O, 4 phases (r, s), C, 3, 3): W_rs = T_r W T_s^T over the kernel's rows and columns
    w = torch.einsum("ria,sjb,ocab->orscij", taps, taps, weight).reshape(-1, weight.shape[1], 3, 3)
    b = None if bias is None else bias.repeat_interleave(4)
    return F.pixel_shuffle(F.conv2d(x, w, b, padding=1), 2)


class ResizeConv(nn.Module):
    """Nearest-neighbour resize to ``size`` x ``size``, then a 4x4 "SAME" convolution (stride 1).
    An exact x2 resize runs as ``phase_conv_x2`` unless ``reference`` is set."""

    def __init__(self, c_in: int, c_out: int, size_in: int, size: int, kernel: int = 4):
        super().__init__()
        self.size_in, self.size = size_in, size
        lo, hi = _same_pad(size, kernel, 1)
        self.pad = (lo, hi, lo, hi)
        self.conv = nn.Conv2d(c_in, c_out, kernel)  # named as in SameConv: checkpoints are shared
        self.phase = size == 2 * size_in and kernel == 4
        self.reference = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.phase and not self.reference:
            return phase_conv_x2(x, self.conv.weight, self.conv.bias)
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="nearest")
        return self.conv(F.pad(x, self.pad))


class Encoder(nn.Module):
    """(N, 1, H, W) -> (N, fc): strided convolutions, then one fully connected layer."""

    def __init__(self, cfg: ConvNetConfig):
        super().__init__()
        sizes = cfg.feature_sizes()
        layers: list[nn.Module] = []
        c_in = 1
        for c_out, size in zip(cfg.channels, sizes):
            layers += [SameConv(c_in, c_out, size, stride=2), nn.GroupNorm(1, c_out), nn.ELU()]
            c_in = c_out
        flat = c_in * sizes[-1] ** 2
        layers += [nn.Flatten(), nn.Linear(flat, cfg.fc), nn.LayerNorm(cfg.fc), nn.ELU()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    """(N, hidden) -> (N, 1, H, W) pixel probabilities: two fc layers, then resize-convolutions."""

    def __init__(self, cfg: ConvNetConfig, hidden: int):
        super().__init__()
        g, c0 = cfg.decoder_grid, cfg.decoder_channels[0] * 2  # 8x8x64 in both layouts
        self.grid = (c0, g, g)
        self.fc = nn.Sequential(
            nn.Linear(hidden, cfg.fc), nn.LayerNorm(cfg.fc), nn.ReLU(),
            nn.Linear(cfg.fc, c0 * g * g), nn.LayerNorm(c0 * g * g), nn.ReLU(),
        )
        # Resize targets: the encoder's feature sizes in reverse, ending at the image size.
        self.sizes = list(reversed(cfg.feature_sizes()[:-1]))
        self.sizes = self.sizes[-(len(cfg.decoder_channels) + 1):]
        convs: list[nn.Module] = []
        c_in, size_in = c0, g
        for c_out, size in zip(cfg.decoder_channels, self.sizes):
            convs.append(nn.Sequential(ResizeConv(c_in, c_out, size_in, size), nn.GroupNorm(1, c_out), nn.ReLU()))
            c_in, size_in = c_out, size
        convs.append(ResizeConv(c_in, 1, size_in, self.sizes[-1]))  # sigmoid in forward, in fp32
        self.convs = nn.ModuleList(convs)

    def use_reference(self, reference: bool = True) -> None:
        """Resize-then-convolve (the reference form) instead of the exact x2 phase decomposition."""
        for m in self.modules():
            if isinstance(m, ResizeConv):
                m.reference = reference

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x = self.fc(h).view(h.shape[0], *self.grid)
        first = next(m for m in self.convs.modules() if isinstance(m, nn.Conv2d))
        if first.weight.is_contiguous(memory_format=torch.channels_last):
            # follow the weights' layout (the fast path on CPU): oneDNN's convolution backward runs
            # ~1.8x faster on a channels-last input than on the NCHW view of the fc output
            x = x.contiguous(memory_format=torch.channels_last)
        for conv in self.convs:
            x = conv(x)
        # fp32 even under bf16 autocast: the loss takes log(psi) and log(1 - psi) near 0 and 1.
        return torch.sigmoid(x.float())
