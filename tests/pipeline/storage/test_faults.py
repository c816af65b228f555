"""Storage against a misbehaving S3: faults injected on the wire between boto3 and moto.

Every test points a Storage at tests/s3_fault_proxy.py (fixture `s3_proxy`), which forwards
to the moto server and answers matching requests with a fault instead: 503 SlowDown, 500
InternalError, a reset connection, a stall past the read timeout, a body cut or stalled
half-way, or a flipped byte. botocore, s3transfer and Storage run their real code paths.
"""

from __future__ import annotations

import base64
import os
import pickle
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from pipeline.storage import Storage, StorageError, relative_key
from tests.s3_fault_proxy import Fault, Rule, S3FaultProxy

pytestmark = pytest.mark.timeout(20)  # a fault must end in an answer, never a hang

MiB = 1024 * 1024
PART = 5 * MiB  # moto, like S3, refuses parts under 5 MiB but the last
DATA = os.urandom(200_000)
STALLS = ("stall", "stall_body")


@dataclass
class Env:
    bucket: str
    tmp: Path
    direct: Any  # a boto3 client straight to moto: set-up and checks behind the proxy's back

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put(self, key: str, data: bytes = DATA) -> None:
        self.direct.put_object(Bucket=self.bucket, Key=key, Body=data)

    def get(self, key: str) -> bytes:
        return self.direct.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def missing(self, key: str) -> bool:
        try:
            self.direct.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            return exc.response["Error"]["Code"] == "404"
        return False

    def file(self, name: str, size: int) -> Path:
        path = self.tmp / name
        path.write_bytes(os.urandom(size))
        return path


@pytest.fixture(scope="module")
def direct_client(s3_server: str) -> Any:
    return boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")


@pytest.fixture
def env(direct_client: Any, s3_bucket: str, tmp_path: Path) -> Env:
    return Env(s3_bucket, tmp_path, direct_client)


def _storage(proxy: S3FaultProxy, fault: Fault | None = None, **overrides: Any) -> Storage:
    """Small blocks and parts, so reads take several ranged GETs and uploads several parts;
    a short read timeout only where a stall must outlast it (a busy machine may be slow)."""
    options: dict[str, Any] = {
        "read_block_size": 64 * 1024,
        "multipart_threshold": PART,
        "multipart_chunksize": PART,
        "read_timeout": 0.5 if fault in STALLS else 10.0,
        **overrides,
    }
    return Storage(proxy.url, "us-east-1", **options)


def _crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


# --- the operations under test -----------------------------------------------------------


def _list(s: Storage, e: Env) -> None:
    e.put("in/a.mp4")
    assert [relative_key(e.uri("in"), v.uri) for v in s.list_videos(e.uri("in"), [".mp4"])] == ["a.mp4"]


def _head(s: Storage, e: Env) -> None:
    e.put("obj")
    info = s.stat(e.uri("obj"))
    assert info is not None and info.size == len(DATA)


def _put(s: Storage, e: Env) -> None:
    s.write_bytes(e.uri("obj"), DATA)
    assert e.get("obj") == DATA


def _get(s: Storage, e: Env) -> None:
    e.put("obj")
    assert s.read_bytes(e.uri("obj")) == DATA


def _ranged(s: Storage, e: Env) -> None:
    e.put("obj")
    with s.open_read(e.uri("obj")) as reader:
        assert reader.read() == DATA


def _upload(s: Storage, e: Env) -> None:
    source = e.file("small.bin", 100_000)
    s.upload(str(source), e.uri("obj"))
    assert e.get("obj") == source.read_bytes()


def _upload_multipart(s: Storage, e: Env) -> None:
    source = e.file("big.bin", PART + 1000)  # two parts, the second small
    s.upload(str(source), e.uri("obj"))
    assert e.get("obj") == source.read_bytes()


def _stream(s: Storage, e: Env) -> None:
    data = e.file("big.bin", 2 * PART + MiB + 1000).read_bytes()  # parts 2 and 3 as written, 1 at the end
    with s.open_write(e.uri("obj")) as out:
        out.write(data)
        out.seek(10)
        out.write(data[10:20])  # as a muxer patches its header
    assert e.get("obj") == data


def _download(s: Storage, e: Env) -> None:
    e.put("obj")
    s.download(e.uri("obj"), str(e.tmp / "dl" / "obj"))
    assert (e.tmp / "dl" / "obj").read_bytes() == DATA
    assert os.listdir(e.tmp / "dl") == ["obj"]  # no temp file of a failed attempt left


def _delete(s: Storage, e: Env) -> None:
    e.put("obj")
    s.delete(e.uri("obj"))
    assert e.missing("obj")


def _delete_prefix(s: Storage, e: Env) -> None:
    for key in ("pre/a", "pre/sub/b"):
        e.put(key, b"x")
    s.delete_prefix(e.uri("pre"))
    assert e.missing("pre/a") and e.missing("pre/sub/b")


@dataclass(frozen=True)
class Op:
    """A Storage operation on the key `key`, and the request (method, target substring) a
    fault aims at."""

    name: str
    method: str
    target: str
    run: Callable[[Storage, Env], None]
    key: str = "obj"

    def __str__(self) -> str:
        return self.name


LIST = Op("list", "GET", "list-type=2", _list, key="in")
HEAD = Op("head", "HEAD", "/obj", _head)
PUT = Op("put", "PUT", "/obj", _put)
GET = Op("get", "GET", "/obj", _get)
RANGED = Op("ranged_get", "GET", "/obj", _ranged)
UPLOAD = Op("upload", "PUT", "/obj", _upload)
CREATE_MPU = Op("create_multipart", "POST", "?uploads", _upload_multipart)
UPLOAD_PART = Op("upload_part", "PUT", "partNumber=2", _upload_multipart)
COMPLETE_MPU = Op("complete_multipart", "POST", "uploadId=", _upload_multipart)
STREAM_PART = Op("stream_part", "PUT", "partNumber=2", _stream)
STREAM_FIRST = Op("stream_first_part", "PUT", "partNumber=1", _stream)
STREAM_COMPLETE = Op("stream_complete", "POST", "uploadId=", _stream)
DOWNLOAD = Op("download", "GET", "/obj", _download)
DELETE = Op("delete", "DELETE", "/obj", _delete)
DELETE_PREFIX = Op("delete_prefix", "POST", "?delete", _delete_prefix, key="pre")
ALL_OPS = [
    *(LIST, HEAD, PUT, GET, RANGED, UPLOAD, CREATE_MPU, UPLOAD_PART, COMPLETE_MPU),
    *(STREAM_PART, STREAM_FIRST, STREAM_COMPLETE, DOWNLOAD, DELETE, DELETE_PREFIX),
]


# --- transient faults: retried, the operation succeeds ------------------------------------


# Every operation against a 500 and a reset; SlowDown (backs off up to 1 s) and a stall
# (costs the read timeout) against a sample of them.
TRANSIENT = [(op, fault) for op in ALL_OPS for fault in ("internal", "reset")] + [
    (LIST, "slowdown"),
    (PUT, "slowdown"),
    (UPLOAD_PART, "slowdown"),
    (GET, "stall"),
    (UPLOAD_PART, "stall"),
    (COMPLETE_MPU, "stall"),
]


@pytest.mark.parametrize(("op", "fault"), TRANSIENT, ids=str)
def test_transient_request_fault_is_retried(op: Op, fault: Fault, s3_proxy: S3FaultProxy, env: Env) -> None:
    times = 2 if fault in ("internal", "reset") else 1
    s3_proxy.add(Rule(fault, op.method, op.target, times=times))

    op.run(_storage(s3_proxy, fault), env)

    assert s3_proxy.count(op.method, op.target, faulted=True) == times
    assert s3_proxy.count(op.method, op.target, faulted=False) >= 1  # the retry that went through


@pytest.mark.parametrize(
    ("op", "fault"),
    [
        (op, fault)
        for op in (GET, RANGED, DOWNLOAD)
        for fault in ("reset_body", "stall_body", "corrupt_response")
        if (op, fault) != (RANGED, "corrupt_response")  # S3 has no checksum for a byte range
    ],
    ids=str,
)
def test_broken_response_body_is_read_again(op: Op, fault: Fault, s3_proxy: S3FaultProxy, env: Env) -> None:
    # The headers arrive fine, so botocore returns; the body then breaks, stalls or fails
    # its CRC32 while it is read, which Storage (or s3transfer) must retry with a new GET.
    times = 1 if fault == "stall_body" else 2
    s3_proxy.add(Rule(fault, op.method, op.target, times=times))

    op.run(_storage(s3_proxy, fault), env)

    assert s3_proxy.count(op.method, op.target, faulted=True) == times
    assert s3_proxy.count(op.method, op.target, faulted=False) >= 1


def test_per_key_delete_errors_are_retried(s3_proxy: S3FaultProxy, env: Env) -> None:
    # DeleteObjects reports per-key InternalError/SlowDown inside a 200: invisible to botocore.
    s3_proxy.add(Rule("delete_errors", "POST", "?delete", times=1))
    _delete_prefix(_storage(s3_proxy), env)
    assert s3_proxy.count("POST", "?delete") == 2


# --- persistent faults: a clear StorageError naming the URI, soon --------------------------


@pytest.mark.parametrize(
    ("op", "fault"),
    [(op, "internal") for op in (LIST, HEAD, PUT, GET, UPLOAD_PART, DELETE_PREFIX)]
    + [(PUT, "reset"), (GET, "slowdown"), (HEAD, "stall")],
    ids=str,
)
def test_persistent_request_fault_fails_clearly(op: Op, fault: Fault, s3_proxy: S3FaultProxy, env: Env) -> None:
    attempts = 2 if fault in ("slowdown", "stall") else 3
    s3_proxy.add(Rule(fault, op.method, op.target, times=1000))
    storage = _storage(s3_proxy, fault, max_attempts=attempts)

    with pytest.raises(StorageError) as caught:
        op.run(storage, env)

    message = str(caught.value)
    assert message.startswith(f"{env.uri(op.key)}: ")
    if fault in ("internal", "slowdown"):
        assert f"after {attempts} attempts" in message
    assert s3_proxy.count(op.method, op.target) == attempts  # botocore's attempts, no more


@pytest.mark.parametrize(
    ("op", "fault", "says"),
    [
        (GET, "reset_body", "read failed 4 times"),
        (RANGED, "stall_body", "read of bytes 0-65535 failed 4 times"),
        (DOWNLOAD, "reset_body", "download failed after retries"),
        (DOWNLOAD, "corrupt_response", "download failed 4 times.*checksum"),
        (DELETE_PREFIX, "delete_errors", "delete failed 4 times.*InternalError"),
    ],
    ids=str,
)
def test_persistent_body_fault_fails_clearly(op: Op, fault: Fault, says: str, s3_proxy: S3FaultProxy, env: Env) -> None:
    s3_proxy.add(Rule(fault, op.method, op.target, times=1000))
    storage = _storage(s3_proxy, fault)

    with pytest.raises(StorageError, match=f"^{env.uri(op.key)}: .*{says}"):
        op.run(storage, env)

    if op is DOWNLOAD:  # s3transfer re-reads a broken stream 5 times; a bad checksum, Storage 4 times
        assert s3_proxy.count("GET", "/obj") == (5 if fault == "reset_body" else 4)
        assert not (env.tmp / "dl").exists() or os.listdir(env.tmp / "dl") == []


# --- multipart uploads leave nothing behind ----------------------------------------------


@pytest.mark.parametrize("fault", ["internal", "reset"])
def test_failed_multipart_upload_is_aborted(fault: Fault, s3_proxy: S3FaultProxy, env: Env) -> None:
    s3_proxy.add(Rule(fault, "PUT", "partNumber=2", times=1000))
    storage = _storage(s3_proxy, fault, max_attempts=3)
    source = env.file("big.bin", PART + 1000)

    with pytest.raises(StorageError, match=f"^{env.uri('big.mkv')}: "):
        storage.upload(str(source), env.uri("big.mkv"))

    assert s3_proxy.count("PUT", "partNumber=2") == 3
    assert s3_proxy.count("DELETE", "uploadId=") == 1  # s3transfer's AbortMultipartUpload
    assert "Uploads" not in env.direct.list_multipart_uploads(Bucket=env.bucket)  # no billed parts
    assert env.missing("big.mkv")


@pytest.mark.parametrize("op", [STREAM_PART, STREAM_FIRST, STREAM_COMPLETE], ids=str)
def test_a_streamed_write_cut_mid_way_is_aborted(op: Op, s3_proxy: S3FaultProxy, env: Env) -> None:
    s3_proxy.add(Rule("internal", op.method, op.target, times=1000))
    storage = _storage(s3_proxy, "internal", max_attempts=3)

    with pytest.raises(StorageError, match=f"^{env.uri('obj')}: .*after 3 attempts"):
        op.run(storage, env)

    assert s3_proxy.count(op.method, op.target) == 3
    assert s3_proxy.count("DELETE", "uploadId=") == 1  # the writer's AbortMultipartUpload
    assert "Uploads" not in env.direct.list_multipart_uploads(Bucket=env.bucket)  # no billed parts
    assert env.missing("obj")


# --- checksums ---------------------------------------------------------------------------


def test_writes_carry_crc32_and_uploads_a_full_object_one(s3_proxy: S3FaultProxy, env: Env) -> None:
    storage = _storage(s3_proxy)
    small, big = env.file("small.bin", 1000), env.file("big.bin", PART + 1000)

    storage.write_bytes(env.uri("w"), DATA)
    storage.upload(str(small), env.uri("small"))
    storage.upload(str(big), env.uri("big"))

    [put] = s3_proxy.seen("PUT", "/w")
    assert put.headers["x-amz-checksum-crc32"] == _crc32(DATA)
    parts = s3_proxy.seen("PUT", "partNumber=")
    assert len(parts) == 2 and all("x-amz-checksum-crc32" in p.headers for p in parts)
    for key, path in (("small", small), ("big", big)):
        head = env.direct.head_object(Bucket=env.bucket, Key=key, ChecksumMode="ENABLED")
        assert head["ChecksumCRC32"] == _crc32(path.read_bytes())
    assert head["ChecksumType"] == "FULL_OBJECT"  # for the multipart object too, not "...-2"


def test_checksums_off_sends_no_checksum_headers(s3_proxy: S3FaultProxy, env: Env) -> None:
    # For S3-compatible stores that reject x-amz-checksum-* and x-amz-sdk-checksum-algorithm.
    storage = _storage(s3_proxy, checksums=False)
    storage.write_bytes(env.uri("w"), DATA)
    storage.upload(str(env.file("big.bin", PART + 1000)), env.uri("big"))
    assert storage.read_bytes(env.uri("w")) == DATA

    checksum_headers = ("x-amz-checksum", "x-amz-sdk-checksum")
    sent = {name for seen in s3_proxy.seen() for name in seen.headers if name.startswith(checksum_headers)}
    assert sent == set() and len(s3_proxy.seen("PUT", "partNumber=")) == 2


def test_corrupted_upload_part_is_detected(s3_proxy: S3FaultProxy, env: Env) -> None:
    # Surprise: moto accepts a part whose body does not match its x-amz-checksum-crc32 and a
    # CompleteMultipartUpload whose full-object CRC32 is wrong (S3 refuses both with a 400);
    # it then reports the CRC32 of what it stored, so Storage's check after the upload sees it.
    s3_proxy.add(Rule("corrupt_request", "PUT", "partNumber=2"))
    source = env.file("big.bin", PART + 1000)

    with pytest.raises(StorageError, match=f"^{env.uri('big')}: the stored object does not match"):
        _storage(s3_proxy).upload(str(source), env.uri("big"))
    assert s3_proxy.count("PUT", "partNumber=2", faulted=True) == 1


def test_corrupted_single_put_never_reads_back_silently(s3_proxy: S3FaultProxy, env: Env) -> None:
    # moto stores a corrupted PUT body with the CRC32 the client sent (S3 would refuse it with
    # a 400), so the corruption surfaces on the first whole-object read, never as data.
    storage = _storage(s3_proxy)
    s3_proxy.add(Rule("corrupt_request", "PUT", "/obj"))
    storage.write_bytes(env.uri("obj"), DATA)

    with pytest.raises(StorageError, match=f"^{env.uri('obj')}: read failed 4 times.*checksum"):
        storage.read_bytes(env.uri("obj"))
    with pytest.raises(StorageError, match="checksum"):
        storage.download(env.uri("obj"), str(env.tmp / "obj"))
    assert not (env.tmp / "obj").exists()


# --- encryption and storage class --------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"sse": "AES256", "storage_class": "STANDARD_IA"},
        {"sse": "aws:kms", "sse_kms_key_id": "arn:aws:kms:us-east-1:123456789012:key/pssr-test"},
    ],
    ids=["aes256-standard-ia", "kms"],
)
def test_every_write_gets_encryption_and_storage_class(
    options: dict[str, str], s3_proxy: S3FaultProxy, env: Env
) -> None:
    storage = _storage(s3_proxy, **options)
    storage.write_bytes(env.uri("w"), b"manifest")
    storage.upload(str(env.file("small.bin", 1000)), env.uri("small"))
    storage.upload(str(env.file("big.bin", PART + 1000)), env.uri("big"))  # multipart

    for key in ("w", "small", "big"):
        head = env.direct.head_object(Bucket=env.bucket, Key=key)
        assert head["ServerSideEncryption"] == options["sse"]
        assert head.get("SSEKMSKeyId") == options.get("sse_kms_key_id")
        assert head.get("StorageClass") == options.get("storage_class")  # S3 omits STANDARD


def test_bad_encryption_or_storage_class_options_fail_early() -> None:
    with pytest.raises(ValueError, match="sse_kms_key_id needs sse='aws:kms'"):
        Storage(sse="AES256", sse_kms_key_id="k")
    with pytest.raises(ValueError, match="storage_class DEEP_ARCHIVE needs a restore"):
        Storage(storage_class="DEEP_ARCHIVE")


def test_unknown_storage_class_fails_naming_the_uri(s3_proxy: S3FaultProxy, env: Env) -> None:
    with pytest.raises(StorageError, match=f"^{env.uri('w')}: InvalidStorageClass"):
        _storage(s3_proxy, storage_class="NO_SUCH_CLASS").write_bytes(env.uri("w"), b"x")


# --- credentials -------------------------------------------------------------------------


def test_secrets_never_reach_errors_repr_or_pickles(
    s3_proxy: S3FaultProxy, env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "pssr-SECRET-0f9e8d7c6b5a-must-not-leak"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    assert boto3.session.Session().get_credentials().secret_key == secret  # what the chain yields
    storage = _storage(s3_proxy, max_attempts=2)
    storage.write_bytes(env.uri("ok"), b"x")  # the client is built now, and signs with the secret

    s3_proxy.add(Rule("internal", "GET", "/obj", times=1000))
    with pytest.raises(StorageError) as caught:
        storage.read_bytes(env.uri("obj"))

    exposed = [
        str(caught.value),
        "".join(traceback.format_exception(caught.value)),  # with the chained botocore error
        repr(storage),
        str(storage),
    ]
    assert all(secret not in text for text in exposed)
    assert secret.encode() not in pickle.dumps(storage)
    assert secret not in repr(pickle.loads(pickle.dumps(storage)).__dict__)
