"""The quality benchmark's video sets, built from a folder of photos and videos held out from training.

Each video is `scenes` scenes joined by hard cuts. A scene from a photo is that photo filmed by
training's camera (`film`, with `draw_motion` up to `max_speed` LR pixels per frame: pans, zoom,
shake, moving objects, motion blur), so every HR frame has a true reference. When the folder
holds videos (real footage), the first scene of every bench video is `frames` consecutive
frames of one, at a centred crop: real motion, the decoded frames as the reference. Three files
per video, lossless FFV1 in Matroska at the same relative key:

    hr/<name>.mkv         the HR reference (`pssr run --reference hr/`)
    bi/<name>.mkv         BI track: training's `bicubic_lr` of each scene
    realistic/<name>.mkv  realistic track: training's `realistic_lr` of each scene

Degradations run per scene, as a camera would film them, never across a cut. A set is a function
of its `BenchSet` settings and the folder: the same seed gives the same files.

`sweep_clips` makes the motion sweep's clips in memory: pure pans at given speeds over the
folder's largest photos.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import torch

from pipeline.media.encode import DEFAULT_PIX_FMT
from pipeline.training.clips import Motion, MotionRanges, draw_motion, film
from pipeline.training.degrade import bicubic_lr, quantize, realistic_lr
from pipeline.training.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES, find_media, load_media

TRACKS = ("bi", "realistic")
# FFV1's 8-bit RGB input, as the pipeline writes FFV1: RGB in, the same RGB out (no YUV matrix).
PIX_FMT = DEFAULT_PIX_FMT["ffv1"]
RATE = Fraction(25)  # whole milliseconds per frame: Matroska's timestamps hold it exactly
SETTINGS_FILE = "set.json"
PHOTO_MARGIN = 16  # pixels beyond the HR size a photo needs: the camera's move stays inside it
SWEEP_SPEEDS = (0.0, 0.25, 1.0, 3.0, 8.0)  # LR pixels per frame; 0: a static clip
# Photo pixels per HR pixel in the sweep: camera photos are soft at full size; video frames are
# reduced from larger sensors, so detail is denser.
SWEEP_REDUCE = 2.0


@dataclass(frozen=True)
class BenchSet:
    """What the set is made of; the defaults keep the whole benchmark (10 pipeline runs) to about
    half an hour on a 2-core CPU."""

    videos: int = 3
    scenes: int = 4
    frames: int = 24  # per scene
    width: int = 640  # HR frame size
    height: int = 360
    scale: int = 4
    seed: int = 0
    max_speed: float = 8.0  # the photo scenes' camera and objects, LR pixels per frame

    def __post_init__(self) -> None:
        if self.width % self.scale or self.height % self.scale:
            raise ValueError(f"HR size {self.width}x{self.height} is not a multiple of the scale {self.scale}")
        if min(self.videos, self.scenes, self.frames) < 1:
            raise ValueError("videos, scenes and frames must be at least 1")

    def names(self) -> list[str]:
        return [f"video{i:02d}.mkv" for i in range(self.videos)]


def _wallpaper(path: Path) -> str:
    """Photos of one wallpaper share a key: jobs/train/photos.py names plasma's files
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


def _real_videos(folder: str | Path, size: tuple[int, int], frames: int) -> list[tuple[Path, int]]:
    """Videos of the folder at least `size` (h, w), with how many frames they have (up to what
    the scenes need)."""
    found = []
    for path in find_media([folder]):
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            continue
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            w, h = stream.codec_context.width, stream.codec_context.height
            count = stream.frames or sum(1 for _ in container.demux(stream) if _.size)
        if h >= size[0] and w >= size[1] and count >= frames:
            found.append((path, count))
    return found


def _video_scene(path: Path, start: int, frames: int, size: tuple[int, int]) -> torch.Tensor:
    """`frames` decoded frames from `start`, centre-cropped to `size`, float on the 8-bit grid."""
    clip = load_media(path, max_side=1 << 16, max_frames=frames, start=start).frames
    h, w = size
    y0, x0 = (clip.shape[-2] - h) // 2, (clip.shape[-1] - w) // 2
    return clip[..., y0 : y0 + h, x0 : x0 + w].float() / 255.0


def build_bench_set(photos: str | Path, root: str | Path, spec: BenchSet = BenchSet()) -> list[str]:
    """Write the set under `root` (hr/, bi/, realistic/ and set.json); returns the video names.

    A folder already holding this exact set (same settings, same photos and videos) is reused as it is.
    """
    root = Path(root)
    hr_size = (spec.height, spec.width)
    # Twice the HR size leaves the camera room for its move and a 1-2x detail reduction.
    max_side = 2 * max(hr_size)
    chosen = pick_photos(photos, hr_size, max_side)
    videos = _real_videos(photos, hr_size, spec.frames)
    photo_scenes = spec.scenes - (1 if videos else 0)
    if len(chosen) < photo_scenes:
        raise ValueError(f"{photos}: {len(chosen)} usable landscape photos, fewer than {photo_scenes} scenes")
    # Photos cycle over the videos in a seeded order; within a video every scene differs. Real
    # footage: bench video v takes file v mod n, from its own part of that file.
    order = torch.randperm(len(chosen), generator=torch.Generator().manual_seed(spec.seed)).tolist()
    names = spec.names()
    scenes: list[list[tuple[Path, int]]] = []
    for v in range(spec.videos):
        row: list[tuple[Path, int]] = []
        if videos:
            path, count = videos[v % len(videos)]
            uses = (spec.videos - 1 - v % len(videos)) // len(videos) + 1  # bench videos taking this file
            part = max(spec.frames, count // uses)
            row.append((path, min(count - spec.frames, (v // len(videos)) * part)))
        row += [(chosen[order[(v * photo_scenes + s) % len(chosen)]], -1) for s in range(photo_scenes)]
        scenes.append(row)
    settings = {
        **asdict(spec),
        "scenes_of": {n: [f"{p.name}@{start}" if start >= 0 else p.name for p, start in row] for n, row in zip(names, scenes)},
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
    ranges = MotionRanges(max_speed=spec.max_speed)
    for name, row in zip(names, scenes):
        hr, bi, real = [], [], []
        for path, start in row:
            if start >= 0:
                clip = _video_scene(path, start, spec.frames, hr_size)
            else:
                source = load_media(path, max_side)
                motion = draw_motion(clip_gen, ranges)
                clip = quantize(film(source, spec.frames, hr_size, motion, spec.scale, clip_gen))  # 8-bit, as stored
            hr.append(clip)
            bi.append(bicubic_lr(clip, spec.scale))
            real.append(realistic_lr(clip, spec.scale, degrade_gen))
        for folder, frames in (("hr", hr), ("bi", bi), ("realistic", real)):
            _write_ffv1(root / folder / name, torch.cat(frames))
    done.write_text(json.dumps(settings, indent=1))
    return names


def sweep_clips(
    photos: str | Path, spec: BenchSet, speeds: tuple[float, ...] = SWEEP_SPEEDS, clips: int = 3, frames: int = 12
) -> list[tuple[float, torch.Tensor]]:
    """(speed, HR clip (frames, 3, H, W) on the 8-bit grid) for each speed and each of the
    `clips` largest landscape photos with room for the fastest pan: a straight pan at exactly
    that speed (LR pixels per frame), in a seeded direction, nothing else moving, the photo
    reduced SWEEP_REDUCE times."""
    hr_size = (spec.height, spec.width)
    travel = max(speeds) * spec.scale * (frames - 1)
    need = (max(hr_size) + travel + 2 * PHOTO_MARGIN) * SWEEP_REDUCE
    sources = [load_media(p, 1 << 16) for p in pick_photos(photos, hr_size, 1 << 16)]
    roomy = sorted((s for s in sources if min(s.frames.shape[-2:]) >= need), key=lambda s: -s.frames[0].numel())
    if len(roomy) < clips:
        raise ValueError(f"{photos}: {len(roomy)} photos have room for a {max(speeds)} px/frame pan, fewer than {clips}")
    gen = torch.Generator().manual_seed(spec.seed + 2)
    out = []
    for source in roomy[:clips]:
        angle = 2 * math.pi * torch.rand((), generator=gen).item()
        for speed in speeds:
            pan = (speed * math.cos(angle), speed * math.sin(angle))
            # The same middle frame at every speed: only the motion differs.
            motion = Motion(pan=pan, reduce=SWEEP_REDUCE, centre=(0.5, 0.5))
            clip_gen = torch.Generator().manual_seed(spec.seed + 3)
            out.append((speed, quantize(film(source, frames, hr_size, motion, spec.scale, clip_gen))))
    return out
