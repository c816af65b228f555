"""`python -m jobs.run.sample PATH`: the sample clip `make run` upscales when no input is given:
4 s of 160x90 moving pattern at 24 fps with a scene cut, a stereo AAC track and subtitles."""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline.media.synthetic import make_clip


def main(path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    make_clip(path, frames=96, size=(160, 90), fps=24, audio_streams=1, subtitle=True, scene_cut_at=48)
    print(f"sample clip: {path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "samples/sample.mp4")
