"""Fetching the data sets: the readers of images packed in Qt resources and Eet files, which
images count, and the sets' separation (no package in two sets, mate-backgrounds in none)."""

from __future__ import annotations

import io
import struct
import zlib

import av
import numpy as np

from jobs.train.photos import SETS, Deb, Wheel, _usable, largest_jpeg, read_rcc


def _encode(rgb: np.ndarray, codec: str, pix_fmt: str) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="image2pipe") as out:
        stream = out.add_stream(codec)
        stream.width, stream.height, stream.pix_fmt = rgb.shape[1], rgb.shape[0], pix_fmt
        fmt = "rgba" if rgb.shape[2] == 4 else "rgb24"
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format=fmt).reformat(format=pix_fmt)
        out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return buffer.getvalue()


def _jpeg(h: int, w: int) -> bytes:
    rgb = np.random.default_rng(h).integers(0, 255, (h, w, 3), dtype=np.uint8)
    return _encode(rgb, "mjpeg", "yuvj444p")


def _rcc(files: dict[str, tuple[bytes, bool]]) -> bytes:
    """A version-2 Qt resource file: root -> "dir" -> the files (each stored raw or zlib-compressed)."""
    names, data = bytearray(), bytearray()

    def name(text: str) -> int:
        offset = len(names)
        names.extend(struct.pack(">HI", len(text), 0) + text.encode("utf-16-be"))
        return offset

    def node(name_offset: int, flags: int, a: int, b: int) -> bytes:
        return struct.pack(">IHII", name_offset, flags, a, b) + b"\0" * 8

    nodes = [node(0, 2, 1, 1), node(name("dir"), 2, len(files), 2)]
    for path, (blob, compress) in files.items():
        stored = struct.pack(">I", len(blob)) + zlib.compress(blob) if compress else blob
        nodes.append(node(name(path), 1 if compress else 0, 0, len(data)))
        data.extend(struct.pack(">I", len(stored)) + stored)
    tree = b"".join(nodes)
    header = 20
    return (
        b"qres" + struct.pack(">IIII", 2, header, header + len(tree), header + len(tree) + len(data))
        + tree + bytes(data) + bytes(names)
    )  # fmt: skip


def test_read_rcc_lists_paths_and_inflates() -> None:
    a, b = _jpeg(16, 24), b"some text " * 50
    files = dict(read_rcc(_rcc({"a.jpg": (a, False), "notes.txt": (b, True)})))
    assert files == {"dir/a.jpg": a, "dir/notes.txt": b}


def test_largest_jpeg_picks_the_biggest_picture() -> None:
    small, big = _jpeg(16, 16), _jpeg(40, 64)
    blob = b"EET header" + small + b"\0junk" + big + b"trailing index"
    found = largest_jpeg(blob)
    assert found is not None and found.startswith(big)
    with av.open(io.BytesIO(found)) as container:
        frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == (64, 40)
    assert largest_jpeg(b"no pictures here") is None


def test_only_whole_opaque_photos_of_a_fair_size_count() -> None:
    opaque = np.full((240, 320, 4), 255, np.uint8)
    cut_out = opaque.copy()
    cut_out[:10, :10, 3] = 0
    assert _usable("a.png", _encode(opaque, "png", "rgba"))
    assert not _usable("b.png", _encode(cut_out, "png", "rgba"))
    assert not _usable("icon.jpg", _jpeg(64, 64))
    assert _usable("photo.jpg", _jpeg(240, 320))
    assert not _usable("broken.jpg", b"not an image")
    assert _usable("clip.mp4", b"")  # videos are kept as they are


def test_sets_share_no_package_and_leave_the_reserved_one_out() -> None:
    def package(source: Deb | Wheel) -> str:
        return source.package if isinstance(source, Deb) else source.requirement.split("==")[0]

    owners: dict[str, str] = {}
    for name, sources in SETS.items():
        for source in sources:
            assert package(source) not in owners, f"{package(source)} in {owners.get(package(source))} and {name}"
            owners[package(source)] = name
            pinned = source.version if isinstance(source, Deb) else source.requirement.split("==")[1]
            assert pinned
    assert not any("mate" in p for p in owners)
    # Both lomiri packages come from one Debian source: they stay on one side.
    assert owners["lomiri-wallpapers-16.04"] == owners["lomiri-wallpapers-20.04"] == "natural"
