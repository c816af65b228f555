"""Checksums for provenance: the sha256 of a source file, taken while it is read anyway, and a
digest of a video stream's coded pictures that survives remuxing; and for archives, the MD5 and
SHA-256 of each output file in the sidecars that `md5sum -c` and `sha256sum -c` read."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any, BinaryIO

from .decode import Source, open_source, video_stream

_BLOCK = 1 << 20


class HashingReader(io.RawIOBase):
    """A seekable reader that hashes the bytes of `raw` as a demuxer reads them.

    Demuxers jump (an MP4 index at the end is read first), so only bytes that extend the hashed
    prefix are fed to the hash; `sha256()` reads what was never read in order (usually the index,
    or nothing) and returns the whole file's digest. A full decode thus hashes a file with almost
    no extra reading: on S3, no second download.
    """

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self.raw = raw
        self._hash = hashlib.sha256()
        self._hashed = 0  # bytes [0, _hashed) are in the hash
        self._pos = raw.tell()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._pos = self.raw.seek(offset, whence)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._take(self._pos, data)
        self._pos += n
        return n

    def _take(self, pos: int, data: bytes) -> None:
        if pos <= self._hashed < pos + len(data):
            self._hash.update(memoryview(data)[self._hashed - pos :])
            self._hashed = pos + len(data)

    def sha256(self) -> str:
        """The whole file's sha256 (reads the parts not yet read in order; leaves the position)."""
        pos = self.raw.tell()
        self.raw.seek(self._hashed)
        while block := self.raw.read(_BLOCK):
            self._take(self._hashed, block)
        self.raw.seek(pos)
        return self._hash.hexdigest()


SIDECARS = ("md5", "sha256")  # OUTPUT_FILE.md5 and OUTPUT_FILE.sha256


@dataclass(frozen=True)
class FileDigests:
    md5: str
    sha256: str

    def of(self, algorithm: str) -> str:
        return self.md5 if algorithm == "md5" else self.sha256


def file_digests(f: BinaryIO) -> FileDigests:
    """MD5 and SHA-256 of a whole file object, in one read from its start."""
    f.seek(0)
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    while block := f.read(_BLOCK):
        md5.update(block)
        sha256.update(block)
    return FileDigests(md5.hexdigest(), sha256.hexdigest())


def checksum_line(digest: str, name: str) -> str:
    """One line of a checksum list as coreutils writes it (`md5sum`, `sha256sum`): digest, two spaces, name."""
    return f"{digest}  {name}\n"


def parse_checksum_list(text: str) -> dict[str, str]:
    """name -> digest from coreutils' form (text mode `  ` or binary mode ` *`); ValueError on a line
    that is not of that form."""
    found = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        digest, sep, name = line.partition(" ")
        if not sep or not name or name[0] not in " *" or not all(c in "0123456789abcdefABCDEF" for c in digest):
            raise ValueError(f"line {n} is not '<digest>  <file name>'")
        found[name[1:]] = digest.lower()
    return found


def file_sha256(f: BinaryIO) -> str:
    """sha256 of a whole file object, read from its start."""
    f.seek(0)
    digest = hashlib.sha256()
    while block := f.read(_BLOCK):
        digest.update(block)
    return digest.hexdigest()


def video_digest(*sources: Source) -> str:
    """sha256 over the coded pictures of the sources' video streams, one after the other (each
    packet's bytes, in decode order).

    Containers do not change it: the chunks a video is stitched from by stream copy give the
    digest of the stitched file, so it can be written into that file's metadata before the file
    exists; any change to a picture (a re-encode, an edit) changes it."""
    digest = hashlib.sha256()
    for src in sources:
        with open_source(src) as container:
            for packet in container.demux(video_stream(container)):
                if packet.size:
                    digest.update(bytes(packet))
    return digest.hexdigest()
