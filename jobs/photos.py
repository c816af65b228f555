"""Fetch the photo sets for training and for the quality benchmark from package registries.

No data set is committed: each set is rebuilt from versioned packages, so the exact source is
the package list below (recorded in the model cards). The two sets share no photo.

    python -m jobs.photos train DIR   # ukui-wallpapers + gnome-backgrounds (Debian), scikit-image's photos (PyPI)
    python -m jobs.photos bench DIR   # plasma-workspace-wallpapers (Debian), held out from training

Needs `apt-get download` and `dpkg-deb` (Debian and Ubuntu) and pip.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# Debian bookworm package versions the shipped weights were trained and benchmarked on.
TRAIN_DEBS = ("ukui-wallpapers", "gnome-backgrounds")
BENCH_DEBS = ("plasma-workspace-wallpapers",)
SKIMAGE = "scikit-image==0.26.0"
# scikit-image's bundled natural photos (its synthetic and binary images are left out).
SKIMAGE_PHOTOS = (
    "astronaut.png", "brick.png", "camera.png", "chelsea.png", "coffee.png", "coins.png", "grass.png",
    "gravel.png", "hubble_deep_field.jpg", "ihc.png", "moon.png", "motorcycle_left.png", "page.png",
    "retina.jpg", "rocket.jpg", "text.png",
)  # fmt: skip
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def _debian_photos(packages: tuple[str, ...], into: Path, work: Path, flat: bool) -> list[Path]:
    """`flat`: keep the file names (the training packages' names are unique, and the trainer
    draws by the sorted list, so the names are part of the recipe); else prefix the folders
    (plasma names every size of every wallpaper alike)."""
    subprocess.run(["apt-get", "download", *packages], cwd=work, check=True)
    root = work / "root"
    for deb in sorted(work.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    written, seen = [], set()
    for path in sorted(root.rglob("*")):
        real = path.resolve()
        # Plasma ships each wallpaper at many sizes, mostly links to one file; screenshots are previews.
        if path.suffix.lower() not in PHOTO_SUFFIXES or "screenshot" in path.name or real in seen or not real.is_file():
            continue
        seen.add(real)
        name = path.name if flat else "_".join(path.relative_to(root).parts[-4:]).replace(" ", "_")
        if (into / name).exists():
            raise FileExistsError(f"two photos named {name} in {packages}")
        shutil.copyfile(real, into / name)
        written.append(into / name)
    return written


def _skimage_photos(into: Path, work: Path) -> list[Path]:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "-q",
            "-d",
            str(work),
            SKIMAGE,
        ],
        check=True,
    )
    (wheel,) = work.glob("scikit_image-*.whl")
    written = []
    with zipfile.ZipFile(wheel) as zf:
        for name in SKIMAGE_PHOTOS:
            target = into / name
            target.write_bytes(zf.read(f"skimage/data/{name}"))
            written.append(target)
    return written


def fetch(which: str, into: Path) -> list[Path]:
    into.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)  # apt's sandbox user must be able to write the downloads
        if which == "train":
            return _debian_photos(TRAIN_DEBS, into, work, flat=True) + _skimage_photos(into, work / "pip")
        return _debian_photos(BENCH_DEBS, into, work, flat=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["train", "bench"])
    parser.add_argument("into", type=Path)
    args = parser.parse_args(argv)
    written = fetch(args.which, args.into)
    print(f"{len(written)} photos in {args.into}")


if __name__ == "__main__":
    main()
