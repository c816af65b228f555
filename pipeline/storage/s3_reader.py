"""A seekable file object over one S3 object version, read by ranged GETs: PyAV and pyarrow read
S3 inputs through it without downloading them whole."""

from __future__ import annotations

import io
from collections import OrderedDict
from typing import Any

from pipeline.storage.errors import BODY_ERRORS, StorageError, s3_errors, with_retries
from pipeline.storage.uris import MiB, split_s3


class S3RangeReader(io.RawIOBase):
    """Seekable reader over one S3 object version via ranged GETs and a small LRU block cache.

    Every GET carries `IfMatch` with the ETag seen at open, so an object replaced while it
    is being read fails with StorageError instead of yielding a mix of two versions.
    """

    def __init__(
        self,
        client: Any,
        uri: str,
        size: int,
        etag: str,
        block_size: int = 4 * MiB,
        max_blocks: int = 4,
    ) -> None:
        super().__init__()
        self.name = uri
        self._client = client
        self._bucket, self._key = split_s3(uri)
        self._size = size
        self._etag = etag
        self._block_size = block_size
        self._max_blocks = max_blocks
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._checkClosed()
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError(f"{self.name}: negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        # Fill the whole buffer when the object allows it (callers such as PyAV then see
        # full reads even across block boundaries).
        self._checkClosed()
        out = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(out) and self._pos < self._size:
            block = self._block(self._pos // self._block_size)
            start = self._pos % self._block_size
            n = min(len(block) - start, len(out) - filled)
            out[filled : filled + n] = block[start : start + n]
            filled += n
            self._pos += n
        return filled

    def readall(self) -> bytes:
        return self.read(max(self._size - self._pos, 0))

    def close(self) -> None:
        self._blocks.clear()
        super().close()

    def _block(self, index: int) -> bytes:
        if index in self._blocks:
            self._blocks.move_to_end(index)
            return self._blocks[index]
        start = index * self._block_size
        end = min(start + self._block_size, self._size)
        data = self._fetch(start, end)
        self._blocks[index] = data
        while len(self._blocks) > self._max_blocks:
            self._blocks.popitem(last=False)
        return data

    def _fetch(self, start: int, end: int) -> bytes:
        def attempt() -> bytes:
            with s3_errors(self.name):
                response = self._client.get_object(
                    Bucket=self._bucket, Key=self._key, Range=f"bytes={start}-{end - 1}", IfMatch=self._etag
                )
            return response["Body"].read()

        data = with_retries(self.name, f"read of bytes {start}-{end - 1}", attempt, BODY_ERRORS)
        if len(data) != end - start:
            raise StorageError(f"{self.name}: got {len(data)} bytes for range {start}-{end - 1}")
        return data
