"""The quality benchmark's video set, built from a folder of photos held out from training.

Each video is `scenes` scenes joined by hard cuts; each scene is a different photo filmed by
a slowly moving camera (training's `camera_clip`), so every HR frame has a true reference.
Three files per video, lossless FFV1 in Matroska at the same relative key:

    hr/<name>.mkv         the HR reference (`pssr run --reference hr/`)
    bi/<name>.mkv         BI track: training's `bicubic_lr` of each scene
    realistic/<name>.mkv  realistic track: training's `realistic_lr` (blur, noise, H.264) per scene

Degradations run per scene, as a camera would film them, never across a cut. The set is a
function of its `BenchSet` settings and the photo folder: the same seed gives the same files.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import torch

from pipeline.media.encode import DEFAULT_PIX_FMT
from pipeline.training.clips import camera_clip
from pipeline.training.degrade import bicubic_lr, quantize, realistic_lr
from pipeline.training.sources import IMAGE_SUFFIXES, find_media, load_media

TRACKS = ("bi", "realistic")
# FFV1's 8-bit RGB input, as the pipeline writes FFV1: RGB in, the same RGB out (no YUV matrix).
PIX_FMT = DEFAULT_PIX_FMT["ffv1"]
RATE = Fraction(25)  # whole milliseconds per frame: Matroska's timestamps hold it exactly
SETTINGS_FILE = "set.json"
PHOTO_MARGIN = 16  # pixels beyond the HR size a photo needs: camera_clip's move stays inside it


@dataclass(frozen=True)
class BenchSet:
    """What the set is made of; the defaults keep the whole benchmark (10 pipeline runs) to
    about a quarter of an hour on a busy 2-core CPU."""

    videos: int = 2
    scenes: int = 3
    frames: int = 16  # per scene
    width: int = 640  # HR frame size
    height: int = 360
    scale: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.width % self.scale or self.height % self.scale:
            raise ValueError(f"HR size {self.width}x{self.height} is not a multiple of the scale {self.scale}")
        if min(self.videos, self.scenes, self.frames) < 1:
            raise ValueError("videos, scenes and frames must be at least 1")

    def names(self) -> list[str]:
        return [f"video{i:02d}.mkv" for i in range(self.videos)]


def _wallpaper(path: Path) -> str:
    """Photos of one wallpaper share a key: jobs/photos names plasma's files
    `<Wallpaper>_contents_images[_dark]_<W>x<H>.<ext>`; any other file is its own photo."""
    return path.stem.split("_contents_")[0]


def _image_size(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as container:
        ctx = container.streams.video[0].codec_context
        return ctx.width, ctx.height


def pick_photos(folder: str | Path, size: tuple[int, int], max_side: int) -> list[Path]:
    """One landscape photo per wallpaper (its largest variant, then the first by name), in name
    order, that still exceeds `size` (h, w) by a margin once reduced to `max_side`. Portrait
    variants and dark twins would repeat a scene."""
    best: dict[str, tuple[int, str, Path]] = {}
    for path in find_media([folder]):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        w, h = _image_size(path)
        reduce = min(1.0, max_side / max(w, h))
        if w <= h or h * reduce < size[0] + PHOTO_MARGIN or w * reduce < size[1] + PHOTO_MARGIN:
            continue
        candidate = (-w * h, path.name, path)
        key = _wallpaper(path)
        if key not in best or candidate < best[key]:
            best[key] = candidate
    return [best[key][2] for key in sorted(best)]


def _write_ffv1(path: Path, frames: torch.Tensor) -> None:
    """(T, 3, H, W) float on the 8-bit grid -> lossless FFV1/Matroska, every frame a keyframe."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = frames.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    tmp = path.with_name(path.name + ".part")
    with av.open(str(tmp), "w", format="matroska") as out:
        stream = out.add_stream("ffv1", rate=RATE)
        stream.width, stream.height, stream.pix_fmt = rgb.shape[2], rgb.shape[1], PIX_FMT
        stream.options = {"g": "1"}  # intra only: any frame can be sought to directly
        for frame in rgb:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format=PIX_FMT)))
        out.mux(stream.encode())
    tmp.replace(path)  # never a half-written file under the final name


def build_bench_set(photos: str | Path, root: str | Path, spec: BenchSet = BenchSet()) -> list[str]:
    """Write the set under `root` (hr/, bi/, realistic/ and set.json); returns the video names.

    A folder already holding this exact set (same settings, same photos) is reused as it is.
    """
    root = Path(root)
    hr_size = (spec.height, spec.width)
    # Twice the HR size leaves the camera room for its move and a 1-2x detail reduction.
    max_side = 2 * max(hr_size)
    chosen = pick_photos(photos, hr_size, max_side)
    if len(chosen) < spec.scenes:
        raise ValueError(f"{photos}: {len(chosen)} usable landscape photos, fewer than {spec.scenes} scenes")
    # Photos cycle over the videos in a seeded order; within a video every scene differs.
    order = torch.randperm(len(chosen), generator=torch.Generator().manual_seed(spec.seed)).tolist()
    names = spec.names()
    scenes = [
        [chosen[order[(v * spec.scenes + s) % len(chosen)]] for s in range(spec.scenes)] for v in range(spec.videos)
    ]
    settings = {
        **asdict(spec),
        "photos": {n: [p.name for p in photos] for n, photos in zip(names, scenes)},
    }
    done = root / SETTINGS_FILE
    complete = all((root / d / n).exists() for d in ("hr", *TRACKS) for n in names)
    if complete and done.exists() and json.loads(done.read_text()) == settings:
        return names
    done.unlink(missing_ok=True)  # written last: a set interrupted mid-way is rebuilt
    for folder in ("hr", *TRACKS):  # a video of an earlier, larger set would join the runs
        shutil.rmtree(root / folder, ignore_errors=True)
    clip_gen = torch.Generator().manual_seed(spec.seed)
    # Degradations draw from their own generator: changing them leaves the HR frames alone.
    degrade_gen = torch.Generator().manual_seed(spec.seed + 1)
    for name, photos_of_video in zip(names, scenes):
        hr, bi, real = [], [], []
        for photo in photos_of_video:
            source = load_media(photo, max_side)
            clip = quantize(camera_clip(source, spec.frames, hr_size, clip_gen))  # 8-bit, as stored
            hr.append(clip)
            bi.append(bicubic_lr(clip, spec.scale))
            real.append(realistic_lr(clip, spec.scale, degrade_gen))
        for folder, frames in (("hr", hr), ("bi", bi), ("realistic", real)):
            _write_ffv1(root / folder / name, torch.cat(frames))
    done.write_text(json.dumps(settings, indent=1))
    return names
