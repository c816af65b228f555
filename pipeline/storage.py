"""One interface over local paths and ``s3://`` URIs.

`Storage` is Ray-free and picklable (it travels to Ray workers): the boto3 client is built
lazily in each process and dropped when pickled. Writes are atomic at their URI: S3 PUT and
CompleteMultipartUpload are atomic, and local writes go to a temp file that is `os.replace`d.

S3 reliability, and who provides it:

* botocore (standard retry mode, `max_attempts` attempts, jittered exponential backoff)
  retries a request until its response is in: connection errors and resets, read timeouts,
  500/502/503/504, throttling codes such as SlowDown, and 200 responses with an embedded
  error or an unparsable body. Non-streaming bodies (list, head, put, multipart calls,
  delete) are read inside that loop, so every call except GetObject is covered whole.
* A GetObject body streams in after botocore has returned: a reset, stall or checksum
  mismatch there surfaces at read time. `read_bytes` and `S3RangeReader` re-issue the GET
  (`_with_retries`); `download` relies on s3transfer's own stream retries and adds
  checksum-mismatch retries.
* Integrity (unless `checksums=False`): every write carries a CRC32 (an upload, the
  full-object CRC32 of the local file, which S3 checks against the assembled object,
  multipart included), an upload is verified with a HEAD afterwards for stores that do not
  check, and whole-object GETs validate the stored checksum. Ranged GETs have no checksum
  to check (TLS covers the wire there).
* DeleteObjects can answer 200 with per-key errors; `delete_prefix` retries those keys.
* A failed multipart upload is aborted by s3transfer before `upload` raises.
* Credentials come only from boto3's default chain; nothing here stores or prints them.
"""

from __future__ import annotations

import base64
import io
import os
import random
import shutil
import tempfile
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal, TypeVar
from urllib.parse import unquote, urlsplit

import boto3
import pyarrow.fs as pafs
from boto3.exceptions import Boto3Error, RetriesExceededError, S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    FlexibleChecksumError,
    HTTPClientError,
    IncompleteReadError,
)

MiB = 1024 * 1024
PIPELINE_AREA = "_pssr"  # the pipeline's own sub-prefix under a root; never an input

T = TypeVar("T")
SSE = Literal["AES256", "aws:kms"]

# Errors a GetObject body raises while it streams in, after botocore's retry loop returned:
# a reset or stall (HTTPClientError subclasses), a short body, or a CRC mismatch.
_BODY_ERRORS: tuple[type[Exception], ...] = (HTTPClientError, IncompleteReadError, FlexibleChecksumError)
# Attempts and backoff of `_with_retries`, for what botocore cannot retry itself.
_RETRY_ATTEMPTS = 4
_RETRY_BACKOFF_S = 0.1  # first backoff cap; doubles per attempt up to _RETRY_BACKOFF_MAX_S
_RETRY_BACKOFF_MAX_S = 2.0
# Archive classes need a restore before any GET, and the pipeline reads back what it writes
# (staging chunks, chunk records, manifests).
_UNREADABLE_STORAGE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})


@dataclass(frozen=True)
class ObjectInfo:
    uri: str
    size: int
    version: str  # opaque: the ETag without quotes (S3) or "mtime_ns:size" (local)


class StorageError(Exception):
    """A storage operation failed; the message names the URI and the cause."""


# --- URI helpers -------------------------------------------------------------------------


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def to_local_path(uri: str) -> str:
    """Absolute local path for a plain path or a ``file://`` URI."""
    if uri.startswith("file:"):
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise StorageError(f"{uri}: file URIs on another host are not supported")
        uri = unquote(parts.path)
    return os.path.abspath(uri)


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); the key may be empty."""
    bucket, _, key = uri[len("s3://") :].partition("/") if is_s3(uri) else ("", "", "")
    if not bucket:
        raise StorageError(f"{uri}: not an s3://bucket/key URI")
    return bucket, key


def join_uri(base: str, *parts: str) -> str:
    """Join path parts onto a local path or S3 URI with single slashes."""
    base = base if is_s3(base) else to_local_path(base)
    pieces = [base.rstrip("/")] + [p.strip("/") for p in parts if p.strip("/")]
    return "/".join(pieces)


def _normalise(uri: str) -> str:
    return uri if is_s3(uri) else to_local_path(uri)


def relative_key(root_uri: str, uri: str) -> str:
    """Key of `uri` relative to the input root; the file name when the root is the file."""
    root, target = _normalise(root_uri).rstrip("/"), _normalise(uri)
    if target == root:
        return target.rsplit("/", 1)[-1]
    if not target.startswith(root + "/"):
        raise ValueError(f"{uri} is not below {root_uri}")
    return target[len(root) + 1 :]


def _folder_prefix(key: str) -> str:
    """Treat a key as a folder: ``a/b`` and ``a/b/`` both list ``a/b/...``; '' lists all."""
    return key.rstrip("/") + "/" if key.strip("/") else ""


def _in_pipeline_area(rel_key: str) -> bool:
    return PIPELINE_AREA in rel_key.split("/")[:-1]


def _normalise_extensions(extensions: Sequence[str]) -> tuple[str, ...]:
    return tuple("." + e.lower().lstrip(".") for e in extensions)


# --- error mapping -----------------------------------------------------------------------

_S3_CAUSES = {
    "NoSuchBucket": "no such bucket",
    "NoSuchKey": "no such key",
    "404": "not found (no such key, or no such bucket)",
    "NotFound": "no such key",
    "AccessDenied": "access denied",
    "403": "access denied",
    "Forbidden": "access denied",
    "PreconditionFailed": "object changed since it was opened (ETag mismatch)",
    "412": "object changed since it was opened (ETag mismatch)",
}


def _client_error_message(uri: str, exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "unknown"))
    cause = _S3_CAUSES.get(code) or f"{code}: {error.get('Message', exc)}"
    retries = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
    # Say when botocore already retried, so a persistent fault does not read as a one-off.
    return f"{uri}: {cause}" + (f" (after {retries + 1} attempts)" if retries else "")


@contextmanager
def _s3_errors(uri: str) -> Iterator[None]:
    # ClientError/BotoCoreError/boto3 messages carry codes, endpoints and keys, never secrets.
    try:
        yield
    except ClientError as exc:
        raise StorageError(_client_error_message(uri, exc)) from exc
    except S3UploadFailedError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ClientError):
            raise StorageError(_client_error_message(uri, cause)) from exc
        raise StorageError(f"{uri}: upload failed: {exc}") from exc
    except RetriesExceededError as exc:  # s3transfer gave up re-reading a download's body
        raise StorageError(f"{uri}: download failed after retries: {exc.last_exception}") from exc
    except (BotoCoreError, Boto3Error) as exc:
        raise StorageError(f"{uri}: {exc}") from exc


class _DeleteErrors(Exception):
    """Per-key errors in a 200 DeleteObjects answer (e.g. InternalError, SlowDown)."""


def _with_retries(uri: str, what: str, attempt: Callable[[], T], retry_on: tuple[type[Exception], ...]) -> T:
    """`attempt()`, run again after a jittered backoff while it fails with `retry_on`.

    For failures botocore's retry loop cannot see: a response body that breaks after the
    call returned, or errors inside a successful response. `attempt` must map its own
    request errors (already retried by botocore) to StorageError, so they are not retried
    a second time here.
    """
    for n in range(1, _RETRY_ATTEMPTS):
        try:
            return attempt()
        except retry_on:
            # Full jitter, as botocore does, so many workers do not retry in step.
            time.sleep(random.uniform(0, min(_RETRY_BACKOFF_S * 2 ** (n - 1), _RETRY_BACKOFF_MAX_S)))
    try:
        return attempt()
    except retry_on as exc:
        raise StorageError(f"{uri}: {what} failed {_RETRY_ATTEMPTS} times; last error: {exc}") from exc


def _file_crc32(path: str) -> str:
    """Base64 big-endian CRC32 of a file, the form of S3's ChecksumCRC32."""
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(8 * MiB):
            crc = zlib.crc32(chunk, crc)
    return base64.b64encode(crc.to_bytes(4, "big")).decode()


def _verify_upload(uri: str, head: dict[str, Any], size: int, crc: str | None) -> None:
    """Fail when the stored object is not the file sent. S3 rejects a CRC mismatch itself;
    this catches stores that accept one (moto and some S3-compatible servers do)."""
    stored = head.get("ChecksumCRC32")
    if head["ContentLength"] != size or (crc and stored and "-" not in stored and stored != crc):
        raise StorageError(
            f"{uri}: the stored object does not match the uploaded file "
            f"(size {head['ContentLength']} vs {size}, CRC32 {stored} vs {crc}); it is corrupt, upload it again"
        )


@contextmanager
def _local_errors(uri: str) -> Iterator[None]:
    try:
        yield
    except FileNotFoundError as exc:
        raise StorageError(f"{uri}: no such file or folder ({exc.filename})") from exc
    except PermissionError as exc:
        raise StorageError(f"{uri}: access denied ({exc.filename})") from exc
    except OSError as exc:
        raise StorageError(f"{uri}: {exc.strerror or exc}") from exc


def _local_info(path: str, st: os.stat_result) -> ObjectInfo:
    return ObjectInfo(uri=path, size=st.st_size, version=f"{st.st_mtime_ns}:{st.st_size}")


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _atomic_local_write(path: str, write: Callable[[BinaryIO], object]) -> None:
    """Write through a temp file in the target's folder, then rename over the target.

    The temp name starts with '.' so dataset readers (pyarrow ignores '.'/'_' names) skip it.
    """
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a finished file gets the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _copy_local(source: str, target: str) -> None:
    """Copy a local file; the target appears whole or not at all. Errors name the source."""
    with _local_errors(source), open(source, "rb") as src:
        _atomic_local_write(target, lambda f: shutil.copyfileobj(src, f, 4 * MiB))


# --- ranged S3 reader --------------------------------------------------------------------


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
            with _s3_errors(self.name):
                response = self._client.get_object(
                    Bucket=self._bucket, Key=self._key, Range=f"bytes={start}-{end - 1}", IfMatch=self._etag
                )
            return response["Body"].read()

        data = _with_retries(self.name, f"read of bytes {start}-{end - 1}", attempt, _BODY_ERRORS)
        if len(data) != end - start:
            raise StorageError(f"{self.name}: got {len(data)} bytes for range {start}-{end - 1}")
        return data


# --- Storage -----------------------------------------------------------------------------


class Storage:
    """Local folders and S3 behind one set of methods; see the module docstring."""

    def __init__(
        self,
        s3_endpoint_url: str | None = None,
        region: str | None = None,
        *,
        multipart_threshold: int = 64 * MiB,
        multipart_chunksize: int = 32 * MiB,
        read_block_size: int = 4 * MiB,
        read_max_blocks: int = 4,
        sse: SSE | None = None,
        sse_kms_key_id: str | None = None,
        storage_class: str | None = None,
        checksums: bool = True,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_attempts: int = 8,
    ) -> None:
        """`sse`, `sse_kms_key_id` and `storage_class` apply to every object written to S3.
        `checksums=False` drops the CRC32 headers, for S3-compatible stores that reject
        them (R2, B2, older MinIO and Ceph do); uploads are then checked on size only.
        `read_timeout` bounds each socket read (a stalled response is retried after it);
        `max_attempts` counts botocore's attempts per request, the first included."""
        if sse_kms_key_id is not None and sse != "aws:kms":
            raise ValueError(f"sse_kms_key_id needs sse='aws:kms', not {sse!r}")
        if storage_class in _UNREADABLE_STORAGE_CLASSES:
            raise ValueError(
                f"storage_class {storage_class} needs a restore before objects can be read, "
                "and the pipeline reads back what it writes; use e.g. GLACIER_IR or a lifecycle rule"
            )
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
        self.s3_endpoint_url = s3_endpoint_url
        self.region = region
        self.multipart_threshold = multipart_threshold
        self.multipart_chunksize = multipart_chunksize
        self.read_block_size = read_block_size
        self.read_max_blocks = read_max_blocks
        self.sse = sse
        self.sse_kms_key_id = sse_kms_key_id
        self.storage_class = storage_class
        self.checksums = checksums
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_attempts = max_attempts
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        # Settings only: credentials live in boto3's chain, never on this object.
        return (
            f"Storage(s3_endpoint_url={self.s3_endpoint_url!r}, region={self.region!r}, sse={self.sse!r}, "
            f"sse_kms_key_id={self.sse_kms_key_id!r}, storage_class={self.storage_class!r}, "
            f"checksums={self.checksums!r})"
        )

    # Pickling: clients and locks are per process; rebuild them on the other side.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_client"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The boto3 S3 client, created on first use; credentials come from boto3's chain."""
        with self._lock:
            if self._client is None:
                # Pinned either way, so AWS_REQUEST_CHECKSUM_CALCULATION and
                # AWS_RESPONSE_CHECKSUM_VALIDATION cannot silently change what is checked.
                checksum_mode = "when_supported" if self.checksums else "when_required"
                config = Config(
                    # Standard, not adaptive: the same retries and backoff, without adaptive's
                    # per-process rate limiter, which starts at zero and so caps a young
                    # client at 0.5 requests/s after a single SlowDown. "total_max_attempts"
                    # counts the first attempt; "max_attempts" would mean retries.
                    retries={"mode": "standard", "total_max_attempts": self.max_attempts},
                    connect_timeout=self.connect_timeout,
                    read_timeout=self.read_timeout,
                    # when_supported: CRC32 on every write, validation of every whole-object GET.
                    request_checksum_calculation=checksum_mode,
                    response_checksum_validation=checksum_mode,
                    # Custom endpoints (MinIO, moto, IP hosts) rarely serve virtual-host style.
                    s3={"addressing_style": "path"} if self.s3_endpoint_url else None,
                )
                self._client = boto3.session.Session().client(
                    "s3", endpoint_url=self.s3_endpoint_url, region_name=self.region, config=config
                )
            return self._client

    def _transfer_config(self) -> TransferConfig:
        # s3transfer aborts a failed multipart upload itself (no billed parts left behind).
        return TransferConfig(
            multipart_threshold=self.multipart_threshold,
            multipart_chunksize=self.multipart_chunksize,
            max_concurrency=4,
        )

    def _write_args(self) -> dict[str, str]:
        """Encryption and storage class for every object the pipeline writes to S3."""
        args: dict[str, str] = {}
        if self.sse:
            args["ServerSideEncryption"] = self.sse
        if self.sse_kms_key_id:
            args["SSEKMSKeyId"] = self.sse_kms_key_id
        if self.storage_class:
            args["StorageClass"] = self.storage_class
        return args

    # --- listing ---

    def list_videos(self, uri: str, extensions: Sequence[str]) -> list[ObjectInfo]:
        """The object at `uri` (any extension), or every matching object below the folder
        `uri`, sorted by uri, skipping the pipeline's own `_pssr/` areas."""
        exts = _normalise_extensions(extensions)
        if is_s3(uri):
            return self._list_videos_s3(uri, exts)
        return self._list_videos_local(to_local_path(uri), exts)

    def _list_videos_s3(self, uri: str, exts: tuple[str, ...]) -> list[ObjectInfo]:
        bucket, key = split_s3(uri)
        if key and not key.endswith("/"):
            info = self.stat(uri)
            if info is not None:
                return [info]
        prefix = _folder_prefix(key)
        found_any = False
        videos = []
        for obj in self._iter_s3(uri, bucket, prefix):
            found_any = True
            rel = obj["Key"][len(prefix) :]
            if rel.lower().endswith(exts) and not _in_pipeline_area(rel):
                videos.append(ObjectInfo(f"s3://{bucket}/{obj['Key']}", obj["Size"], obj["ETag"].strip('"')))
        if not found_any:
            raise StorageError(f"{uri}: no such key or prefix")
        return sorted(videos, key=lambda v: v.uri)

    def _list_videos_local(self, path: str, exts: tuple[str, ...]) -> list[ObjectInfo]:
        with _local_errors(path):
            st = os.stat(path)
            if not os.path.isdir(path):
                return [_local_info(path, st)]
            videos = []
            for folder, dirs, files in os.walk(path, onerror=_raise):
                dirs[:] = [d for d in dirs if d != PIPELINE_AREA]
                for name in files:
                    if name.lower().endswith(exts):
                        full = os.path.join(folder, name)
                        videos.append(_local_info(full, os.stat(full)))
        return sorted(videos, key=lambda v: v.uri)

    def list_uris(self, prefix: str) -> list[str]:
        """Every object/file below the folder `prefix`, sorted; [] when there is none."""
        if is_s3(prefix):
            bucket, key = split_s3(prefix)
            return sorted(f"s3://{bucket}/{o['Key']}" for o in self._iter_s3(prefix, bucket, _folder_prefix(key)))
        path = to_local_path(prefix)
        if not os.path.isdir(path):
            return []
        with _local_errors(path):
            return sorted(
                os.path.join(folder, name) for folder, _, files in os.walk(path, onerror=_raise) for name in files
            )

    def _iter_s3(self, uri: str, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
        with _s3_errors(uri):
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for page in pages:
                yield from page.get("Contents", [])

    # --- single objects ---

    def stat(self, uri: str) -> ObjectInfo | None:
        """Size and version of the object/file at `uri`, or None when there is none."""
        if is_s3(uri):
            bucket, key = split_s3(uri)
            try:
                head = self.client.head_object(Bucket=bucket, Key=key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise StorageError(_client_error_message(uri, exc)) from exc
            except BotoCoreError as exc:
                raise StorageError(f"{uri}: {exc}") from exc
            return ObjectInfo(uri, head["ContentLength"], head["ETag"].strip('"'))
        path = to_local_path(uri)
        with _local_errors(path):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                return None
        return None if os.path.isdir(path) else _local_info(path, st)

    def exists(self, uri: str) -> bool:
        return self.stat(uri) is not None

    def open_read(self, uri: str) -> BinaryIO:
        """A seekable binary reader; on S3 it pins the object's ETag seen now."""
        if is_s3(uri):
            bucket, key = split_s3(uri)
            with _s3_errors(uri):
                head = self.client.head_object(Bucket=bucket, Key=key)
            reader = S3RangeReader(
                self.client, uri, head["ContentLength"], head["ETag"], self.read_block_size, self.read_max_blocks
            )
            return reader  # type: ignore[return-value]  # RawIOBase is a binary file object
        path = to_local_path(uri)
        with _local_errors(path):
            return open(path, "rb")

    def read_bytes(self, uri: str) -> bytes:
        """The whole object; on S3 checked against its stored checksum when it has one."""
        if is_s3(uri):
            bucket, key = split_s3(uri)

            def attempt() -> bytes:
                with _s3_errors(uri):
                    body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
                return body.read()

            return _with_retries(uri, "read", attempt, _BODY_ERRORS)
        path = to_local_path(uri)
        with _local_errors(path):
            return Path(path).read_bytes()

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Atomic: readers see the old content or the new, never a partial object."""
        if is_s3(uri):
            bucket, key = split_s3(uri)
            checksum = {"ChecksumAlgorithm": "CRC32"} if self.checksums else {}
            with _s3_errors(uri):
                self.client.put_object(Bucket=bucket, Key=key, Body=data, **checksum, **self._write_args())
            return
        path = to_local_path(uri)
        with _local_errors(path):
            _atomic_local_write(path, lambda f: f.write(data))

    def download(self, uri: str, local_path: str) -> None:
        """Copy the object to a local file (created atomically; parent folders made)."""
        target = to_local_path(local_path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if is_s3(uri):
            bucket, key = split_s3(uri)
            # s3transfer writes a temp file and renames it, pins the ETag across parts and
            # re-reads broken body streams itself; a checksum mismatch it leaves to us.
            with _s3_errors(uri):
                _with_retries(
                    uri,
                    "download",
                    lambda: self.client.download_file(bucket, key, target, Config=self._transfer_config()),
                    (FlexibleChecksumError,),
                )
            return
        _copy_local(to_local_path(uri), target)

    def upload(self, local_path: str, uri: str, content_type: str | None = None) -> None:
        """Copy a local file to `uri` atomically (multipart above the threshold on S3).

        On S3 the stored object is checked against the file: its size, and its full-object
        CRC32 unless `checksums` is off.
        """
        source = to_local_path(local_path)
        if not os.path.isfile(source):
            raise StorageError(f"{uri}: upload source {source} is not a file")
        if is_s3(uri):
            bucket, key = split_s3(uri)
            size = os.path.getsize(source)
            crc = _file_crc32(source) if self.checksums else None
            extra = self._write_args()
            if crc:
                # A full-object CRC32 (not per-part only): S3 checks the assembled object against
                # it, and later whole-object GETs of a multipart object can validate it too. The
                # algorithm is named as well: moto keeps no checksum of a single PUT without it.
                extra |= {"ChecksumAlgorithm": "CRC32", "ChecksumCRC32": crc}
            if content_type:
                extra["ContentType"] = content_type
            with _s3_errors(uri):
                self.client.upload_file(source, bucket, key, ExtraArgs=extra, Config=self._transfer_config())
                checksum_mode = {"ChecksumMode": "ENABLED"} if crc else {}
                head = self.client.head_object(Bucket=bucket, Key=key, **checksum_mode)
            _verify_upload(uri, head, size, crc)
            return
        _copy_local(source, to_local_path(uri))

    # --- deletion ---

    def delete(self, uri: str) -> None:
        """Remove one object/file; a missing one is fine."""
        if is_s3(uri):
            bucket, key = split_s3(uri)
            with _s3_errors(uri):
                self.client.delete_object(Bucket=bucket, Key=key)
            return
        path = to_local_path(uri)
        with _local_errors(path):
            Path(path).unlink(missing_ok=True)

    def delete_prefix(self, uri: str) -> None:
        """Remove everything below the folder `uri`; a missing folder is fine."""
        if not is_s3(uri):
            path = to_local_path(uri)
            with _local_errors(path):
                if os.path.isdir(path):
                    shutil.rmtree(path)
            return
        bucket, key = split_s3(uri)
        keys = [o["Key"] for o in self._iter_s3(uri, bucket, _folder_prefix(key))]
        for i in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            self._delete_keys(uri, bucket, keys[i : i + 1000])

    def _delete_keys(self, uri: str, bucket: str, keys: list[str]) -> None:
        """DeleteObjects, again for the keys it reports as failed in its 200 answer."""
        remaining = keys

        def attempt() -> None:
            nonlocal remaining
            batch = {"Objects": [{"Key": k} for k in remaining], "Quiet": True}
            with _s3_errors(uri):
                errors = self.client.delete_objects(Bucket=bucket, Delete=batch).get("Errors", [])
            if errors:
                remaining = [e["Key"] for e in errors]
                first = errors[0]
                raise _DeleteErrors(
                    f"could not delete {len(errors)} objects, "
                    f"e.g. {first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )

        _with_retries(uri, "delete", attempt, (_DeleteErrors,))

    # --- pyarrow ---

    def arrow_filesystem(self, uri: str) -> tuple[pafs.FileSystem, str]:
        """A pyarrow filesystem and the path inside it, for `pyarrow.dataset` over `uri`."""
        if not is_s3(uri):
            return pafs.LocalFileSystem(), to_local_path(uri)
        bucket, key = split_s3(uri)
        options: dict[str, Any] = {
            # boto3 resolves the region through its chain; pyarrow's own lookup differs.
            "region": self.region or self.client.meta.region_name,
            "connect_timeout": self.connect_timeout,
            "request_timeout": self.read_timeout,
            "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=self.max_attempts),
        }
        if self.s3_endpoint_url:
            # pyarrow wants host:port and the scheme apart; it defaults to https.
            endpoint = urlsplit(self.s3_endpoint_url)
            options["endpoint_override"] = endpoint.netloc
            options["scheme"] = endpoint.scheme or "https"
        return pafs.S3FileSystem(**options), f"{bucket}/{key}".rstrip("/")


def _raise(exc: OSError) -> None:
    """os.walk error hook: fail instead of silently skipping unreadable folders."""
    raise exc
