"""A seekable file object that writes one S3 object as it is written: a multipart upload sent part
by part, so a stitched master never needs local disk (docs/operations.md#disk).

Muxers write front to back and, when they close, go back to patch their header (Matroska's segment
size, seek head and duration; MP4's mdat size). The writer therefore holds the first part in
memory until the end and sends it last (parts may be sent in any order: their numbers order them),
keeps the last `_HOLD` bytes of what follows unsent for late patches near the end, and refuses a
write into a part already sent. A file smaller than two parts goes up as one PUT.

Integrity as `S3Store.upload` has it: each part carries its CRC32, and the object its full-object
CRC32, combined from the parts' (`crc32_combine`), which S3 checks against the assembled object
and the writer against the stored one (for stores that do not check).
"""

from __future__ import annotations

import base64
import io
import zlib
from typing import Any

from pipeline.storage.errors import StorageError, s3_errors, verify_stored
from pipeline.storage.uris import MiB, split_s3

MIN_PART = 5 * MiB  # S3's smallest part (all but the last)
_MAX_PART = 5 * 1024 * MiB  # S3's largest part
_HOLD = 1 * MiB
_PARTS_PER_SIZE = 1000  # part size doubles after each thousand parts: 10,000 parts reach S3's 5 TiB


class S3StreamWriter(io.RawIOBase):
    """Write with `write`/`seek`/`tell`, then `commit()` (the object appears whole, atomically) or
    `abort()` (nothing appears, no parts are left billed). Memory: the first part and the part
    being filled, `part_size` each at first."""

    def __init__(self, client: Any, uri: str, part_size: int, put_args: dict[str, str], checksums: bool) -> None:
        super().__init__()
        if part_size < MIN_PART:
            raise ValueError(f"part_size must be at least {MIN_PART} bytes, not {part_size}")
        self.name = uri
        self._client = client
        self._bucket, self._key = split_s3(uri)
        self._part_size = part_size
        self._put_args = put_args
        self._checksums = checksums
        self._head = bytearray()  # bytes [0, part_size): part 1, sent at commit
        self._tail = bytearray()  # bytes [_tail_start, ...) not sent yet
        self._tail_start = part_size
        self._pos = 0
        self._size = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._tail_crc = 0  # CRC32 of the bytes sent in parts 2.. (crc32_combine takes it from 0)

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError(f"{self.name}: negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        n = len(view)
        if self._pos < self._part_size:
            k = min(n, self._part_size - self._pos)
            _write_into(self._head, self._pos, view[:k])
            self._pos, view = self._pos + k, view[k:]
        if view:
            if self._pos < self._tail_start:
                raise StorageError(
                    f"{self.name}: the writer went back to byte {self._pos}, in a part already uploaded "
                    f"(parts from byte {self._part_size} on are sent as they fill)"
                )
            _write_into(self._tail, self._pos - self._tail_start, view)
            self._pos += len(view)
        self._size = max(self._size, self._pos)
        while len(self._tail) >= self._next_part_size() + _HOLD:
            self._send_part(self._next_part_size())
        return n

    def commit(self) -> None:
        """Send what is left and complete the upload; then check the stored object against what was written."""
        if self._upload_id is None and len(self._tail) <= self._next_part_size():
            body = bytes(self._head + self._tail)
            crc = crc32_b64(zlib.crc32(body))
            with s3_errors(self.name):
                self._client.put_object(
                    Bucket=self._bucket, Key=self._key, Body=body, **self._crc_args(crc), **self._put_args
                )
        else:
            while self._tail:
                self._send_part(min(len(self._tail), self._next_part_size()))
            self._upload(1, bytes(self._head))
            head_crc = zlib.crc32(self._head)
            crc = crc32_b64(crc32_combine(head_crc, self._tail_crc, self._size - len(self._head)))
            parts = sorted(self._parts, key=lambda p: p["PartNumber"])
            full = {"ChecksumCRC32": crc, "ChecksumType": "FULL_OBJECT"} if self._checksums else {}
            with s3_errors(self.name):
                self._client.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": parts},
                    **full,
                )
            self._upload_id = None
        checksum_mode = {"ChecksumMode": "ENABLED"} if self._checksums else {}
        with s3_errors(self.name):
            head = self._client.head_object(Bucket=self._bucket, Key=self._key, **checksum_mode)
        verify_stored(self.name, head, self._size, crc if self._checksums else None)

    def abort(self) -> None:
        """Drop an upload in flight: nothing appears at the key and no uploaded part stays billed."""
        if self._upload_id is not None:
            with s3_errors(self.name):
                self._client.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id)
            self._upload_id = None

    def _next_part_size(self) -> int:
        """The size of the next part to send after the first (numbers from 2)."""
        doublings = (len(self._parts) + 1) // _PARTS_PER_SIZE
        return min(self._part_size << doublings, _MAX_PART)

    def _send_part(self, size: int) -> None:
        if self._upload_id is None:
            full = {"ChecksumAlgorithm": "CRC32", "ChecksumType": "FULL_OBJECT"} if self._checksums else {}
            with s3_errors(self.name):
                answer = self._client.create_multipart_upload(
                    Bucket=self._bucket, Key=self._key, **full, **self._put_args
                )
            self._upload_id = answer["UploadId"]
        body = bytes(self._tail[:size])
        self._upload(len(self._parts) + 2, body)
        self._tail_crc = crc32_combine(self._tail_crc, zlib.crc32(body), size)
        del self._tail[:size]
        self._tail_start += size

    def _crc_args(self, crc: str) -> dict[str, str]:
        return {"ChecksumAlgorithm": "CRC32", "ChecksumCRC32": crc} if self._checksums else {}

    def _upload(self, number: int, body: bytes) -> None:
        with s3_errors(self.name):
            answer = self._client.upload_part(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=body,
                **self._crc_args(crc32_b64(zlib.crc32(body))),
            )
        part = {"PartNumber": number, "ETag": answer["ETag"]}
        if "ChecksumCRC32" in answer:
            part["ChecksumCRC32"] = answer["ChecksumCRC32"]
        self._parts.append(part)


def _write_into(buffer: bytearray, offset: int, data: memoryview) -> None:
    """Overwrite or extend `buffer` at `offset` (zeros fill a gap, as in a file)."""
    if offset > len(buffer):
        buffer.extend(bytes(offset - len(buffer)))
    buffer[offset : offset + len(data)] = data


def crc32_b64(crc: int) -> str:
    """S3's form of a CRC32: base64 of its 4 big-endian bytes."""
    return base64.b64encode(crc.to_bytes(4, "big")).decode()


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC32 of A + B from CRC32(A), CRC32(B) and len(B) (zlib's crc32_combine, which Python's
    zlib does not expose): crc1 is advanced over len2 zero bytes by squaring the GF(2) operator
    that appends one zero bit."""
    if len2 == 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]  # one zero bit
    even = _gf2_square(odd)  # two zero bits
    odd = _gf2_square(even)  # four
    while True:
        even = _gf2_square(odd)  # one zero byte at first, then doubling
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def _gf2_times(matrix: list[int], vector: int) -> int:
    total, i = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[i]
        vector >>= 1
        i += 1
    return total


def _gf2_square(matrix: list[int]) -> list[int]:
    return [_gf2_times(matrix, row) for row in matrix]
