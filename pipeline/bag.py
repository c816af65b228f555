"""A BagIt bag (RFC 8493) of one job's outputs, the form archives take transfers in.

The payload is the outputs the job's checksum lists name (OUTPUT/_pssr/fixity/<job_id>.md5 and
.sha256, pipeline/media/fixity.py), copied below DEST/data/ under their paths below OUTPUT; each
copy is hashed on the way and must match both lists, so the bag's manifests are the digests taken
when the job wrote the files, checked once more. bagit.txt, which makes the folder a bag, is
written last: an interrupted bagging leaves no bag that claims to be whole.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from datetime import date

from pipeline.errors import PssrError
from pipeline.media.fixity import SIDECARS, checksum_line, file_digests, parse_checksum_list
from pipeline.naming import fixity_uri
from pipeline.provenance import TOOL, tool_version
from pipeline.storage import PIPELINE_AREA, Storage, join_uri

BAGIT_TXT = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"


class BagError(PssrError):
    pass


class ChangedFile(BagError):
    """An output no longer matches the checksum its job recorded."""


@dataclass(frozen=True)
class Bag:
    uri: str
    job_id: str
    files: int
    bytes: int


def latest_job(storage: Storage, output_root: str) -> str:
    """The latest job under OUTPUT that wrote checksum lists (job ids begin with their UTC start)."""
    lists = storage.list_uris(join_uri(output_root, PIPELINE_AREA, "fixity"))
    jobs = sorted(uri.rsplit("/", 1)[-1].removesuffix(".sha256") for uri in lists if uri.endswith(".sha256"))
    if not jobs:
        raise BagError(
            f"{output_root}: no job's checksum lists under {PIPELINE_AREA}/fixity/ "
            "(a job with sidecars: false writes none)"
        )
    return jobs[-1]


def _manifest_path(path: str) -> str:
    """A payload path as a BagIt manifest writes it: CR, LF and % percent-encoded (RFC 8493, 2.1.3)."""
    return "data/" + path.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _lines(digests: dict[str, str]) -> bytes:
    return "".join(checksum_line(digest, name) for name, digest in sorted(digests.items())).encode()


def make_bag(storage: Storage, output_root: str, dest: str, job_id: str | None = None) -> Bag:
    """Bag the outputs of `job_id` (default: the latest job with checksum lists) at `dest`, which
    must hold nothing yet. BagError names the file when a copy does not match its checksum."""
    job = job_id or latest_job(storage, output_root)
    if storage.list_uris(dest):
        raise BagError(f"{dest} is not empty: a bag goes into a new folder or prefix")
    lists = {}
    for algorithm in SIDECARS:
        uri = fixity_uri(output_root, job, algorithm)
        if not storage.exists(uri):
            raise BagError(f"{uri}: job {job}'s checksum list is missing")
        try:
            lists[algorithm] = parse_checksum_list(storage.read_bytes(uri).decode())
        except ValueError as exc:
            raise BagError(f"{uri}: {exc}") from None
    paths = sorted(lists["sha256"])
    if sorted(lists["md5"]) != paths:
        raise BagError(f"job {job}'s md5 and sha256 lists name different files")
    manifests: dict[str, dict[str, str]] = {algorithm: {} for algorithm in SIDECARS}
    total = 0
    with tempfile.TemporaryDirectory(prefix="pssr-bag-") as tmp:
        local = os.path.join(tmp, "payload")
        for path in paths:
            source = join_uri(output_root, path)
            storage.download(source, local)
            with open(local, "rb") as f:
                digests = file_digests(f)
            for algorithm in SIDECARS:
                if digests.of(algorithm) != lists[algorithm][path]:
                    raise ChangedFile(
                        f"{source}: its {algorithm} is {digests.of(algorithm)}, but job {job}'s checksum list "
                        f"says {lists[algorithm][path]}: changed since the job wrote it"
                    )
                manifests[algorithm][_manifest_path(path)] = digests.of(algorithm)
            storage.upload(local, join_uri(dest, "data", path))
            total += os.path.getsize(local)
    tags = {f"manifest-{a}.txt": _lines(manifests[a]) for a in SIDECARS}
    tags["bag-info.txt"] = (
        f"Bag-Software-Agent: {TOOL} {tool_version()}\n"
        f"Bagging-Date: {date.today().isoformat()}\n"
        f"External-Identifier: {job}\n"
        f"External-Description: the outputs of {TOOL} job {job} under {output_root}\n"
        f"Payload-Oxum: {total}.{len(paths)}\n"
    ).encode()
    tags["bagit.txt"] = BAGIT_TXT.encode()
    listed = dict(tags)  # the tag manifests list the other tag files, not each other
    for algorithm in SIDECARS:
        tags[f"tagmanifest-{algorithm}.txt"] = _lines(
            {n: hashlib.new(algorithm, d).hexdigest() for n, d in listed.items()}
        )
    for name, data in sorted(tags.items(), key=lambda item: item[0] == "bagit.txt"):  # bagit.txt last
        storage.write_bytes(join_uri(dest, name), data)
    return Bag(join_uri(dest), job, len(paths), total)
