"""StrongSR: the multi-frame model (global structure and motion coherence), LR -> HR base.

Per-frame spatial convolutions interleaved with motion-aligned attention. Optical flow between
consecutive LR frames (pipeline/quality/flow.py, coarse-to-fine Lucas-Kanade) says where each pixel went;
in every block, each position of frame t attends to a k x k neighbourhood around itself in frame
t and around where the flow carried it in the frames at most `window` away (their features
warped to t, bilinear), with a learned bias per frame offset and neighbour. Alignment thus
follows motion of any speed up to `max_flow` LR pixels per frame, and the k x k neighbourhood
absorbs the flow's small errors (the guided-attention idea of RVRT, and the flow-guided
alignment of BasicVSR++, at a CPU budget). Where the flow is wrong (occlusions, new content),
the attention weights fall back on frame t itself. Beside the attention, which can only average
what it aligned, a linear fusion of the aligned values side by side can take their differences.

Output frame t depends only on input frames t-R..t+R with R = n_blocks * window
(`temporal_radius`): the flow of a pair of frames depends only on that pair, and frames beyond
the clip are absent from attention, never padded or replicated, so a clip processed in pieces
with at least R context frames gives the same core frames as the whole clip.

Layout, for speed on CPU and GPU alike: features stay (N, C, H, W) in channels-last memory, so
the per-frame convolutions get the layout oneDNN and cuDNN prefer, and the per-token layers
(LayerNorm, the attention's projections, the MLP) read the same memory as a (N, H, W, C) view
without a copy.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.quality import flow

# Flow is estimated on frames of at most this many pixels on the longer side (larger ones are
# reduced first, the flow scaled back up): motion estimation needs structure, not fine detail,
# and its cost would otherwise rival the model's on HD inputs.
FLOW_MAX_SIDE = 640


def bicubic_upscale(frames: torch.Tensor, scale: int) -> torch.Tensor:
    """(N, C, h, w) -> (N, C, h*scale, w*scale), bicubic, unclamped (linear in its input).

    Exactly F.interpolate(mode="bicubic", align_corners=False), computed as one convolution into
    the scale x scale output phases and a pixel shuffle: every output pixel reads the 5 x 5 input
    pixels around its source (edges repeated, as interpolate clamps its taps), and a convolution
    runs 2-4x faster than interpolate's bicubic on CPU. Always in float32 or wider, even
    under autocast: this base carries the whole image, the models only a residual over it.
    """
    c, h, w = frames.shape[-3:]
    dtype = frames.dtype if frames.dtype == torch.float64 else torch.float32
    kernel = _bicubic_kernel(scale).to(frames.device, dtype).repeat(c, 1, 1, 1)
    device = frames.device.type
    with torch.autocast(device, enabled=False) if torch.amp.is_autocast_available(device) else nullcontext():
        # Channels-last: oneDNN's grouped convolution is several times faster in that layout.
        padded = F.pad(frames.to(dtype), (2, 2, 2, 2), mode="replicate").contiguous(memory_format=torch.channels_last)
        phases = F.conv2d(padded, kernel, groups=c).unflatten(1, (c, scale, scale))  # (N, c, ry, rx, h, w)
        # The pixel shuffle, written as one copy into a contiguous result.
        return phases.permute(0, 1, 4, 2, 5, 3).reshape(-1, c, h * scale, w * scale)


@lru_cache
def _bicubic_kernel(scale: int) -> torch.Tensor:
    """(scale², 1, 5, 5): output phase (ry, rx) at channel ry*scale + rx, the weights of the input
    pixels at offsets -2..2 around it, read off interpolate's own output for unit impulses."""
    kernel = torch.zeros(scale * scale, 1, 5, 5, dtype=torch.float64)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            impulse = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
            impulse[0, 0, 2, 2] = 1.0
            up = F.interpolate(impulse, scale_factor=scale, mode="bicubic", align_corners=False)[0, 0]
            # Output pixel (m, r) reads input m + d; the impulse at 2 is that input for m = 2 - d.
            block = up[(2 - dy) * scale : (3 - dy) * scale, (2 - dx) * scale : (3 - dx) * scale]
            kernel[:, 0, dy + 2, dx + 2] = block.reshape(-1)
    return kernel


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """F.linear; on CPU a matmul then an in-place bias, which at these widths takes about two
    thirds of the time addmm does (it first copies the broadcast bias into its output)."""
    if x.device.type != "cpu":
        return F.linear(x, weight, bias)
    out = x.matmul(weight.t())
    return out if bias is None else out.add_(bias)


def _frame_span(frames: int, offset: int) -> tuple[int, int]:
    """Frames t of a clip for which t + offset is also in the clip: [lo, hi)."""
    return max(0, -offset), min(frames, frames - offset)


def _no_autocast(device: torch.device):
    return torch.autocast(device.type, enabled=False) if torch.amp.is_autocast_available(device.type) else nullcontext()


@torch.no_grad()
def estimate_motion(clip: torch.Tensor, max_flow: float) -> torch.Tensor:
    """Flow of each frame to its neighbours: (B, T, 3, h, w) -> (B, T, 4, h, w), float32.

    Channels 0-1: F_{t->t+1}, channels 2-3: F_{t->t-1}, in LR pixels (x, y), with frame_{t±1}(p +
    F(p)) ≈ frame_t(p); zero where the neighbour is absent (the clip's ends). Each pair's flow
    depends only on that pair, clamped to ±`max_flow` per component.
    """
    b, t, _, h, w = clip.shape
    motion = clip.new_zeros((b, t, 4, h, w), dtype=torch.float32)
    if t < 2:
        return motion
    with _no_autocast(clip.device):
        frames = clip.float()
        reduce = math.ceil(max(h, w) / FLOW_MAX_SIDE)
        if reduce > 1:
            small = (max(1, round(h / reduce)), max(1, round(w / reduce)))
            frames = F.interpolate(frames.flatten(0, 1), size=small, mode="area").unflatten(0, (b, t))
        cur, nxt = frames[:, :-1].flatten(0, 1), frames[:, 1:].flatten(0, 1)
        flows = flow.estimate_flow(torch.cat((cur, nxt)), torch.cat((nxt, cur)))  # [t -> t+1; t+1 -> t]
        if reduce > 1:
            ratio = torch.tensor((w / flows.shape[-1], h / flows.shape[-2]), device=flows.device).view(1, 2, 1, 1)
            flows = F.interpolate(flows, size=(h, w), mode="bilinear", align_corners=False) * ratio
        flows = flows.clamp_(-max_flow, max_flow).unflatten(0, (2, b, t - 1))
        motion[:, :-1, 0:2] = flows[0]
        motion[:, 1:, 2:4] = flows[1]
    return motion


def _offset_flows(motion: torch.Tensor, window: int) -> dict[int, torch.Tensor]:
    """F_{t->t+d} for 0 < |d| <= window, (B, T, 2, h, w) each, from the one-frame flows of
    `estimate_motion`, chained: F_{t->t+d} = F_{t->t+d∓1} + F_{t+d∓1->t+d}(p + F_{t->t+d∓1}).
    Entries whose frame t+d is outside the clip are meaningless (never read)."""
    b, t = motion.shape[:2]
    flows: dict[int, torch.Tensor] = {}
    for sign, channels in ((1, slice(0, 2)), (-1, slice(2, 4))):
        step = motion[:, :, channels]
        flows[sign] = step
        for d in range(2, window + 1):
            prev = flows[sign * (d - 1)]  # t -> t+(d-1)·sign
            lo, hi = _frame_span(t, sign * (d - 1))
            nxt = torch.zeros_like(prev)
            # The one-frame flow of frame t+(d-1)·sign, read where the chain so far lands.
            hop = step[:, lo + sign * (d - 1) : hi + sign * (d - 1)].flatten(0, 1)
            here = prev[:, lo:hi].flatten(0, 1)
            nxt[:, lo:hi] = (here + flow.warp(hop, here)).unflatten(0, (b, hi - lo))
            flows[sign * d] = nxt
    return flows


def _sampling_grid(offset_flow: torch.Tensor) -> torch.Tensor:
    """(N, 2, h, w) flow in pixels -> grid_sample's (N, h, w, 2) grid (align_corners=True)."""
    h, w = offset_flow.shape[-2:]
    ys = torch.arange(h, device=offset_flow.device, dtype=offset_flow.dtype)
    xs = torch.arange(w, device=offset_flow.device, dtype=offset_flow.dtype)
    gx = (xs.view(1, 1, w) + offset_flow[:, 0]) * (2 / max(w - 1, 1)) - 1
    gy = (ys.view(1, h, 1) + offset_flow[:, 1]) * (2 / max(h - 1, 1)) - 1
    return torch.stack((gx, gy), dim=-1)


class AlignedAttention(nn.Module):
    """Multi-head attention of each position of frame t over k x k neighbourhoods in the frames
    at most `window` away, each neighbour frame's keys and values warped to frame t along the
    flow; frames outside the clip and neighbours outside the frame are absent."""

    def __init__(self, dim: int, heads: int, window: int, neighbourhood: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        if neighbourhood < 1 or neighbourhood % 2 == 0:
            raise ValueError(f"neighbourhood {neighbourhood} must be odd and positive")
        self.heads, self.neighbourhood = heads, neighbourhood
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        # Learned preference per frame offset (-window..window) and neighbour, per head.
        self.bias = nn.Parameter(torch.zeros(2 * window + 1, neighbourhood * neighbourhood, heads))
        # Aligned fusion: a linear map of the values of frame t and of its aligned neighbours, side by
        # side. Attention can only average them; this can take their differences, where the sub-pixel
        # detail a neighbour adds lies (the concat-and-convolve fusion of BasicVSR). Starts at zero.
        self.fuse = nn.Linear((2 * window + 1) * dim, dim, bias=False)
        nn.init.zeros_(self.fuse.weight)

    def forward(self, x: torch.Tensor, frames: int, window: int, grids: dict[int, torch.Tensor]) -> torch.Tensor:
        """x: (B*T, H, W, C) tokens of `frames` consecutive frames per clip -> same shape.
        grids[d]: (B*T, H, W, 2) where frame t's positions are in frame t+d (for 0 < |d| <= window)."""
        bt, h, w, c = x.shape
        b, heads, head_dim = bt // frames, self.heads, c // self.heads
        r = self.neighbourhood // 2
        # q, k and v from slices of the one qkv layer, the 1/sqrt(head_dim) folded into q. k's bias
        # adds the same q·b_k to every score of a query (cancelled by the softmax); v's bias passes
        # through the attention unchanged (weights sum to 1), so it folds into proj's bias.
        wq, wk, wv = self.qkv.weight.split(c)
        bq, _, bv = self.qkv.bias.split(c)
        scale = 1.0 / math.sqrt(head_dim)
        q = _linear(x, wq * scale, bq * scale).view(b, frames, h, w, heads, head_dim)
        kv = _linear(x, torch.cat((wk, wv)), None)  # (B*T, H, W, 2C)
        centre = (self.bias.shape[0] - 1) // 2
        # Frame t itself first: it covers every frame, so its terms initialise the sums below.
        offsets = sorted(
            (d for d in range(-window, window + 1) if _frame_span(frames, d)[0] < _frame_span(frames, d)[1]), key=abs
        )
        sources = []
        for d in offsets:
            lo, hi = _frame_span(frames, d)
            src = kv.view(b, frames, h, w, 2 * c)[:, lo + d : hi + d].flatten(0, 1)
            if d:
                src = F.grid_sample(
                    src.permute(0, 3, 1, 2),
                    grids[d].view(b, frames, h, w, 2)[:, lo:hi].flatten(0, 1),
                    mode="bilinear",
                    padding_mode="border",
                    align_corners=True,
                ).permute(0, 2, 3, 1)
            if r:  # zero keys and values beyond the frame (a tile's margin keeps its kept part exact)
                src = F.pad(src, (0, 0, r, r, r, r))
            sources.append((d, lo, hi, src.view(b, hi - lo, h + 2 * r, w + 2 * r, 2 * c)))
        shifts = [(dy, dx) for dy in range(2 * r + 1) for dx in range(2 * r + 1)]
        n = len(shifts)
        # Scores (source x neighbour, B, T, H, W, heads), that axis first: the softmax then runs
        # across whole tensors instead of along a tiny last dimension. A frame absent at the
        # clip's ends scores -inf.
        scores = q.new_empty((len(sources) * n, b, frames, h, w, heads))
        for i, (d, lo, hi, src) in enumerate(sources):
            scores[i * n : (i + 1) * n, :, :lo] = -math.inf
            scores[i * n : (i + 1) * n, :, hi:] = -math.inf
            qs = q[:, lo:hi]
            for j, (dy, dx) in enumerate(shifts):
                k = src[:, :, dy : dy + h, dx : dx + w, :c].unflatten(-1, (heads, head_dim))
                if torch.is_grad_enabled():  # out= is not differentiable; inference skips the copy
                    scores[i * n + j, :, lo:hi] = (qs * k).sum(-1)
                else:
                    torch.sum(qs * k, -1, out=scores[i * n + j, :, lo:hi])
        scores += self.bias[[centre + d for d, *_ in sources]].reshape(-1, 1, 1, 1, 1, heads)
        weights = scores.softmax(0).unsqueeze(-1)  # frame t itself is always present: no row is all -inf
        out = q
        for i, (d, lo, hi, src) in enumerate(sources):
            for j, (dy, dx) in enumerate(shifts):
                v = src[:, :, dy : dy + h, dx : dx + w, c:].unflatten(-1, (heads, head_dim))
                if i == j == 0:
                    out = weights[0] * v
                else:
                    out[:, lo:hi].addcmul_(weights[i * n + j, :, lo:hi], v)
        out = out.view(b, frames, h, w, c)
        for d, lo, hi, src in sources:  # the fusion's share of each frame present (values before v's bias)
            start = (centre + d) * c
            v = src[:, :, r : r + h, r : r + w, c:]
            out[:, lo:hi] += _linear(v, self.fuse.weight[:, start : start + c], None)
        return _linear(out.view(bt, h, w, c), self.proj.weight, self.proj.bias + self.proj.weight @ bv)


class StrongBlock(nn.Module):
    """Spatial residual conv per frame, then a pre-norm aligned-attention transformer layer."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, window: int, neighbourhood: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1)
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = AlignedAttention(dim, heads, window, neighbourhood)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, f: torch.Tensor, frames: int, window: int, grids: dict[int, torch.Tensor]) -> torch.Tensor:
        """f: (B*T, C, H, W) features, channels-last, of `frames` consecutive frames per clip."""
        f = f + self.conv2(F.gelu(self.conv1(f)))
        tok = f.permute(0, 2, 3, 1)  # (B*T, H, W, C): a view of channels-last memory, no copy
        tok = tok + self.attn(self.norm1(tok), frames, window, grids)
        fc1, _, fc2 = self.mlp  # the Sequential keeps the weight files' key names (mlp.0, mlp.2)
        tok = tok + _linear(F.gelu(_linear(self.norm2(tok), fc1.weight, fc1.bias)), fc2.weight, fc2.bias)
        return tok.permute(0, 3, 1, 2)


def _frames(f: torch.Tensor, clips: int, keep: slice, channels_last: bool = True) -> torch.Tensor:
    """Frames `keep` of each clip of (B*T, ...) features or grids, features kept channels-last."""
    t = f.shape[0] // clips
    if keep.start == 0 and keep.stop == t:
        return f
    kept = f.unflatten(0, (clips, t))[:, keep].flatten(0, 1)
    return kept.contiguous(memory_format=torch.channels_last) if channels_last else kept


class StrongSR(nn.Module):
    """(B, T, 3, H, W) in [0, 1] -> (B, T, 3, H*scale, W*scale) in [0, 1]."""

    def __init__(
        self,
        scale: int,
        dim: int,
        n_blocks: int,
        heads: int,
        window: int,
        patch: int = 1,
        mlp_ratio: float = 2.0,
        neighbourhood: int = 3,
        max_flow: float = 32.0,
    ) -> None:
        super().__init__()
        if scale < 1 or patch < 1 or window < 0 or n_blocks < 1 or max_flow < 0:
            raise ValueError(
                f"bad StrongSR settings: scale={scale} patch={patch} window={window} n_blocks={n_blocks} "
                f"max_flow={max_flow}"
            )
        self.scale, self.patch, self.window, self.n_blocks = scale, patch, window, n_blocks
        self.max_flow, self.neighbourhood = float(max_flow), neighbourhood
        # patch 1: a 3x3 conv; patch p > 1: a linear p x p patch embedding (big sizes, fewer tokens).
        self.embed = nn.Conv2d(3, dim, 3, padding=1) if patch == 1 else nn.Conv2d(3, dim, patch, stride=patch)
        self.blocks = nn.ModuleList(
            StrongBlock(dim, heads, mlp_ratio, window, neighbourhood) for _ in range(n_blocks)
        )
        up = patch * scale
        self.recon = nn.Conv2d(dim, 3 * up * up, 3, padding=1)
        self.shuffle = nn.PixelShuffle(up)
        # Honest start: a fresh model outputs exactly (clamped) bicubic, not noise.
        nn.init.zeros_(self.recon.weight)
        nn.init.zeros_(self.recon.bias)

    @property
    def temporal_radius(self) -> int:
        """R: output frame t depends only on input frames t-R..t+R."""
        return self.n_blocks * self.window

    @property
    def spatial_radius(self) -> int:
        """LR pixels an output pixel sees on each side (tiling's margin, pipeline/models/tiling.py), given
        the flow of the whole frame (`run_strong` passes it to every tile).

        The convolutions reach one patch each: two 3x3 per block and the 3x3 recon, plus the 3x3
        embed when patch is 1. Each block's attention reaches `window` flow hops of at most
        `max_flow` LR pixels, one more patch for the bilinear warp, and the neighbourhood's
        radius. At patch p, a reach of L patches sees (L + 1) p - 1 pixels. The bicubic base
        needs 2 px."""
        convs = 2 * self.n_blocks + 1 + (self.patch == 1)
        attention = self.n_blocks * (math.ceil(self.window * self.max_flow / self.patch) + 1 + self.neighbourhood // 2)
        return max((convs + attention + 1) * self.patch - 1, 2)

    @property
    def spatial_align(self) -> int:
        """Tiles start on multiples of the patch, so they cut the frame into the same patches."""
        return self.patch

    def motion(self, clip: torch.Tensor) -> torch.Tensor:
        """The flow the model aligns by, (B, T, 4, h, w) (`estimate_motion`); computed once on whole
        frames and handed to `forward` with each piece or tile, it keeps them exact."""
        return estimate_motion(clip, self.max_flow)

    def _grids(self, motion: torch.Tensor, span: slice, pad: tuple[int, int]) -> dict[int, torch.Tensor]:
        """Sampling grids at feature resolution for the frames `span` of the clip, per offset d."""
        if not self.window:
            return {}
        b = motion.shape[0]
        m = motion[:, span].flatten(0, 1)
        if pad[0] or pad[1]:
            m = F.pad(m, (0, pad[1], 0, pad[0]), mode="replicate")
        if self.patch > 1:  # the mean motion of each patch, in patches
            m = F.avg_pool2d(m, self.patch) / self.patch
        flows = _offset_flows(m.unflatten(0, (b, -1)), self.window)
        return {d: _sampling_grid(f.flatten(0, 1)) for d, f in flows.items()}

    def forward(self, x: torch.Tensor, keep: slice | None = None, motion: torch.Tensor | None = None) -> torch.Tensor:
        """Upscale frames `keep` (default: all) of each clip; the others are context only.

        `motion`: the clip's flow from `motion()` (computed here when not given). Each block is
        computed only on the frames the blocks after it still need (`window` fewer on each side
        per block), so context frames cost less than output frames; the kept frames come out
        exactly as in a full forward pass.
        """
        if x.dim() != 5 or x.shape[2] != 3:
            raise ValueError(f"StrongSR expects (B, T, 3, H, W), got {tuple(x.shape)}")
        b, t, _, h, w = x.shape
        start, stop, _ = (keep or slice(0, t)).indices(t)
        if start >= stop:
            raise ValueError(f"keep {keep} selects no frame of a {t}-frame clip")

        def needed(blocks_after: int) -> slice:
            reach = blocks_after * self.window
            return slice(max(0, start - reach), min(t, stop + reach))

        first = needed(self.n_blocks)
        if motion is None and self.window:
            motion = self.motion(x[:, first])
            first_in_motion = slice(0, first.stop - first.start)
        else:
            first_in_motion = first
        frames = x[:, first].reshape(-1, 3, h, w)
        ph, pw = -h % self.patch, -w % self.patch
        if ph or pw:  # spatial (never temporal) padding to whole patches; cropped off below
            frames = F.pad(frames, (0, pw, 0, ph), mode="replicate")
        grids = self._grids(motion, first_in_motion, (ph, pw)) if self.window and motion is not None else {}
        f = self.embed(frames).contiguous(memory_format=torch.channels_last)
        span = first
        for i, block in enumerate(self.blocks):
            f = block(f, span.stop - span.start, self.window, grids)
            nxt = needed(self.n_blocks - 1 - i)
            kept = slice(nxt.start - span.start, nxt.stop - span.start)
            f = _frames(f, b, kept)
            grids = {d: _frames(g, b, kept, channels_last=False) for d, g in grids.items()}
            span = nxt
        res = self.shuffle(self.recon(f))[..., : h * self.scale, : w * self.scale]
        base = bicubic_upscale(x[:, start:stop].reshape(-1, 3, h, w), self.scale)
        return (base + res).clamp_(0.0, 1.0).view(b, stop - start, 3, h * self.scale, w * self.scale)
