"""The S3 backend of `Storage` (AWS, or any S3-compatible store at `s3_endpoint_url`).

S3 reliability, and who provides it:

* botocore (standard retry mode, `max_attempts` attempts, jittered exponential backoff)
  retries a request until its response is in: connection errors and resets, read timeouts,
  500/502/503/504, throttling codes such as SlowDown, and 200 responses with an embedded
  error or an unparsable body. Non-streaming bodies (list, head, put, multipart calls,
  delete) are read inside that loop, so every call except GetObject is covered whole.
* A GetObject body streams in after botocore has returned: a reset, stall or checksum
  mismatch there surfaces at read time. `read_bytes` and `S3RangeReader` re-issue the GET
  (`with_retries`); `download` relies on s3transfer's own stream retries and adds
  checksum-mismatch retries.
* Integrity (unless `checksums=False`): every write carries a CRC32 (an upload, the
  full-object CRC32 of the local file, which S3 checks against the assembled object,
  multipart included), an upload is verified with a HEAD afterwards for stores that do not
  check, and whole-object GETs validate the stored checksum. Ranged GETs have no checksum
  to check (TLS covers the wire there).
* DeleteObjects can answer 200 with per-key errors; `delete_prefix` retries those keys.
* A failed multipart upload is aborted before `upload` (by s3transfer) or `open_write` (by
  `S3StreamWriter`) raises.
* Credentials come only from boto3's default chain; nothing here stores or prints them.
"""

from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import KW_ONLY, dataclass
from typing import Any, BinaryIO, Literal
from urllib.parse import urlsplit

import boto3
import pyarrow.fs as pafs
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, FlexibleChecksumError

from pipeline.storage.errors import (
    BODY_ERRORS,
    StorageError,
    check_version,
    client_error_message,
    s3_errors,
    verify_stored,
    with_retries,
)
from pipeline.storage.s3_reader import S3RangeReader
from pipeline.storage.s3_writer import S3StreamWriter, crc32_b64
from pipeline.storage.uris import MiB, ObjectInfo, folder_prefix, in_pipeline_area, split_s3

SSE = Literal["AES256", "aws:kms"]
# Archive classes need a restore before any GET, and the pipeline reads back what it writes
# (staging chunks, chunk records, manifests).
_UNREADABLE_STORAGE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})


@dataclass(repr=False)
class S3Store:
    """``s3://bucket/key`` URIs behind the methods of `Storage`; picklable (it travels to Ray
    workers): the boto3 client is built lazily in each process and dropped when pickled.

    `sse`, `sse_kms_key_id` and `storage_class` apply to every object written to S3.
    `checksums=False` drops the CRC32 headers, for S3-compatible stores that reject them (R2, B2,
    older MinIO and Ceph do); uploads are then checked on size only. `read_timeout` bounds each
    socket read (a stalled response is retried after it); `max_attempts` counts botocore's
    attempts per request, the first included."""

    s3_endpoint_url: str | None = None
    region: str | None = None
    _: KW_ONLY
    multipart_threshold: int = 64 * MiB
    multipart_chunksize: int = 32 * MiB
    read_block_size: int = 4 * MiB
    read_max_blocks: int = 4
    sse: SSE | None = None
    sse_kms_key_id: str | None = None
    storage_class: str | None = None
    checksums: bool = True
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_attempts: int = 8

    def __post_init__(self) -> None:
        if self.sse_kms_key_id is not None and self.sse != "aws:kms":
            raise ValueError(f"sse_kms_key_id needs sse='aws:kms', not {self.sse!r}")
        if self.storage_class in _UNREADABLE_STORAGE_CLASSES:
            raise ValueError(
                f"storage_class {self.storage_class} needs a restore before objects can be read, "
                "and the pipeline reads back what it writes; use e.g. GLACIER_IR or a lifecycle rule"
            )
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        # Settings only: credentials live in boto3's chain, never on this object.
        return (
            f"s3_endpoint_url={self.s3_endpoint_url!r}, region={self.region!r}, sse={self.sse!r}, "
            f"sse_kms_key_id={self.sse_kms_key_id!r}, storage_class={self.storage_class!r}, "
            f"checksums={self.checksums!r}"
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

    def write_args(self) -> dict[str, str]:
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

    def list_videos(self, uri: str, exts: tuple[str, ...]) -> list[ObjectInfo]:
        bucket, key = split_s3(uri)
        if key and not key.endswith("/"):
            info = self.stat(uri)
            if info is not None:
                return [info]
        prefix = folder_prefix(key)
        found_any = False
        videos = []
        for obj in self._iter(uri, bucket, prefix):
            found_any = True
            rel = obj["Key"][len(prefix) :]
            if rel.lower().endswith(exts) and not in_pipeline_area(rel):
                videos.append(ObjectInfo(f"s3://{bucket}/{obj['Key']}", obj["Size"], obj["ETag"].strip('"')))
        if not found_any:
            raise StorageError(f"{uri}: no such key or prefix")
        return sorted(videos, key=lambda v: v.uri)

    def list_uris(self, prefix: str) -> list[str]:
        bucket, key = split_s3(prefix)
        return sorted(f"s3://{bucket}/{o['Key']}" for o in self._iter(prefix, bucket, folder_prefix(key)))

    def list_folders(self, prefix: str) -> list[str]:
        bucket, key = split_s3(prefix)
        start = folder_prefix(key)
        with s3_errors(prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=start, Delimiter="/")
            names = [p["Prefix"][len(start) :].rstrip("/") for page in pages for p in page.get("CommonPrefixes", [])]
        return sorted(names)

    def _iter(self, uri: str, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
        with s3_errors(uri):
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for page in pages:
                yield from page.get("Contents", [])

    # --- single objects ---

    def stat(self, uri: str) -> ObjectInfo | None:
        bucket, key = split_s3(uri)
        try:
            head = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StorageError(client_error_message(uri, exc)) from exc
        except BotoCoreError as exc:
            raise StorageError(f"{uri}: {exc}") from exc
        return ObjectInfo(uri, head["ContentLength"], head["ETag"].strip('"'))

    def open_read(self, uri: str, version: str | None = None) -> BinaryIO:
        """Pins the object's ETag seen now: a replaced object fails the reads that follow."""
        bucket, key = split_s3(uri)
        with s3_errors(uri):
            head = self.client.head_object(Bucket=bucket, Key=key)
        check_version(uri, head["ETag"].strip('"'), version)
        reader = S3RangeReader(
            self.client, uri, head["ContentLength"], head["ETag"], self.read_block_size, self.read_max_blocks
        )
        return reader  # type: ignore[return-value]  # RawIOBase is a binary file object

    def read_bytes(self, uri: str) -> bytes:
        bucket, key = split_s3(uri)

        def attempt() -> bytes:
            with s3_errors(uri):
                body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
            return body.read()

        return with_retries(uri, "read", attempt, BODY_ERRORS)

    def write_bytes(self, uri: str, data: bytes) -> None:
        bucket, key = split_s3(uri)
        checksum = {"ChecksumAlgorithm": "CRC32"} if self.checksums else {}
        with s3_errors(uri):
            self.client.put_object(Bucket=bucket, Key=key, Body=data, **checksum, **self.write_args())

    @contextmanager
    def open_write(self, uri: str, content_type: str | None = None) -> Iterator[BinaryIO]:
        """Streamed part by part (`S3StreamWriter`); parts are `multipart_chunksize` at first."""
        extra = self.write_args() | ({"ContentType": content_type} if content_type else {})
        writer = S3StreamWriter(self.client, uri, self.multipart_chunksize, extra, self.checksums)
        try:
            yield writer  # type: ignore[misc]  # RawIOBase is a binary file object
            writer.commit()
        except BaseException:
            # The first failure is the one to report; an abort that fails too leaves parts that a
            # lifecycle rule removes (docs/operations.md#s3).
            with suppress(StorageError):
                writer.abort()
            raise

    def download(self, uri: str, target: str) -> None:
        bucket, key = split_s3(uri)
        # s3transfer writes a temp file and renames it, pins the ETag across parts and
        # re-reads broken body streams itself; a checksum mismatch it leaves to us.
        with s3_errors(uri):
            with_retries(
                uri,
                "download",
                lambda: self.client.download_file(bucket, key, target, Config=self._transfer_config()),
                (FlexibleChecksumError,),
            )

    def upload(self, source: str, uri: str, content_type: str | None = None) -> None:
        """Multipart above the threshold; the stored object is checked against the file: its
        size, and its full-object CRC32 unless `checksums` is off."""
        bucket, key = split_s3(uri)
        size = os.path.getsize(source)
        crc = _file_crc32(source) if self.checksums else None
        extra = self.write_args()
        if crc:
            # A full-object CRC32 (not per-part only): S3 checks the assembled object against
            # it, and later whole-object GETs of a multipart object can validate it too. The
            # algorithm is named as well: moto keeps no checksum of a single PUT without it.
            extra |= {"ChecksumAlgorithm": "CRC32", "ChecksumCRC32": crc}
        if content_type:
            extra["ContentType"] = content_type
        with s3_errors(uri):
            self.client.upload_file(source, bucket, key, ExtraArgs=extra, Config=self._transfer_config())
            checksum_mode = {"ChecksumMode": "ENABLED"} if crc else {}
            head = self.client.head_object(Bucket=bucket, Key=key, **checksum_mode)
        verify_stored(uri, head, size, crc)

    # --- deletion ---

    def delete(self, uri: str) -> None:
        bucket, key = split_s3(uri)
        with s3_errors(uri):
            self.client.delete_object(Bucket=bucket, Key=key)

    def delete_prefix(self, uri: str) -> None:
        bucket, key = split_s3(uri)
        keys = [o["Key"] for o in self._iter(uri, bucket, folder_prefix(key))]
        for i in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            self._delete_keys(uri, bucket, keys[i : i + 1000])

    def _delete_keys(self, uri: str, bucket: str, keys: list[str]) -> None:
        """DeleteObjects, again for the keys it reports as failed in its 200 answer."""
        remaining = keys

        def attempt() -> None:
            nonlocal remaining
            batch = {"Objects": [{"Key": k} for k in remaining], "Quiet": True}
            with s3_errors(uri):
                errors = self.client.delete_objects(Bucket=bucket, Delete=batch).get("Errors", [])
            if errors:
                remaining = [e["Key"] for e in errors]
                first = errors[0]
                raise _DeleteErrors(
                    f"could not delete {len(errors)} objects, "
                    f"e.g. {first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )

        with_retries(uri, "delete", attempt, (_DeleteErrors,))

    # --- pyarrow ---

    def arrow_filesystem(self, uri: str) -> tuple[pafs.FileSystem, str]:
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


class _DeleteErrors(Exception):
    """Per-key errors in a 200 DeleteObjects answer (e.g. InternalError, SlowDown)."""


def _file_crc32(path: str) -> str:
    """Base64 big-endian CRC32 of a file, the form of S3's ChecksumCRC32."""
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(8 * MiB):
            crc = zlib.crc32(chunk, crc)
    return crc32_b64(crc)
