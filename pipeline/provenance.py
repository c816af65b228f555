"""Provenance of an output video: container tags that mark it as machine-upscaled and say by what
and from what, and the check that reads them back with the output's checksum sidecars (`pssr verify`).

The key names live here only: the stitcher writes `Provenance.tags()`, the verifier reads them
with `read_provenance`. MP4/MOV store them as QuickTime metadata keys (mdta), Matroska as global
tags (upper-cased by the muxer; reading ignores case). `comment` carries the same in one line
for tools that show no custom keys, and survives remuxers that drop them.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import asdict, dataclass, field, fields
from typing import BinaryIO

from pipeline.errors import PssrError
from pipeline.media import MediaError, Source, open_source
from pipeline.media.fixity import SIDECARS, file_digests, file_sha256, parse_checksum_list, video_digest
from pipeline.storage import Storage

TOOL = "pssr"
PREFIX = "com.pssr."
MARKER = PREFIX + "machine_upscaled"  # "true" on every output
COMMENT = "comment"
NONE = "none"  # a value that does not exist (the weights of a classical method)


def tool_version() -> str:
    try:
        return importlib.metadata.version(TOOL)
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


@dataclass(frozen=True)
class Provenance:
    """What made an output. Each field is the tag `com.pssr.<field>`."""

    tool: str
    tool_version: str
    scale: int
    strong_model: str
    strong_sha256: str | None  # None: a classical method, no weights
    light_model: str
    light_sha256: str | None
    source_key: str  # relative to the input root
    source_uri: str
    source_sha256: str  # of the whole source file
    config_hash: str  # the settings that change output bytes (JobSpec.config_hash)
    deinterlace: str | None  # the filter the frames went through before the models; None: none
    video_sha256: str | None = None  # the output's coded pictures (media.fixity.video_digest)

    def tags(self) -> dict[str, str]:
        tags = {MARKER: "true"}
        tags.update({PREFIX + name: NONE if value is None else str(value) for name, value in asdict(self).items()})
        weights = ", ".join(
            f"{kind} {model}" + (f" (weights sha256 {sha[:12]}...)" if sha else "")
            for kind, model, sha in (
                ("strong", self.strong_model, self.strong_sha256),
                ("light", self.light_model, self.light_sha256),
            )
        )
        tags[COMMENT] = (
            f"Machine-upscaled x{self.scale} by {self.tool} {self.tool_version} ({weights}) from {self.source_key} "
            f"(sha256 {self.source_sha256}); not an original recording."
        )
        return tags

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> Provenance:
        """ValueError naming the first missing or malformed key."""
        values: dict[str, str | int | None] = {}
        for field in fields(cls):
            key = PREFIX + field.name
            if key not in tags:
                raise ValueError(f"missing key {key}")
            values[field.name] = None if tags[key] == NONE and field.name in _NULLABLE else tags[key]
        try:
            values["scale"] = int(values["scale"])  # type: ignore[arg-type]
        except ValueError:
            raise ValueError(f"{PREFIX}scale is not a number: {values['scale']!r}") from None
        return cls(**values)  # type: ignore[arg-type]


_NULLABLE = {"strong_sha256", "light_sha256", "deinterlace", "video_sha256"}


class NotProvenanced(PssrError):
    """The file carries no PS-SR provenance (not a PS-SR output, or its tags were stripped)."""


def read_tags(output: Source) -> dict[str, str]:
    """The container tags of a video file, keys lower-cased; MediaError when it cannot be read."""
    with open_source(output) as container:
        return {k.lower(): v for k, v in container.metadata.items()}


def read_provenance(output: Source) -> Provenance:
    """NotProvenanced without the marker or with keys missing; MediaError when unreadable."""
    return provenance_of(read_tags(output))


def provenance_of(tags: dict[str, str]) -> Provenance:
    """The provenance in a file's tags (keys lower-cased); NotProvenanced as `read_provenance`."""
    if tags.get(MARKER) != "true":
        raise NotProvenanced(f"no {MARKER} tag: not a PS-SR output, or its tags were removed")
    try:
        return Provenance.from_tags(tags)
    except ValueError as exc:
        raise NotProvenanced(f"PS-SR provenance incomplete: {exc}") from None


@dataclass
class Verification:
    provenance: Provenance
    tags: dict[str, str]  # the file's PS-SR tags and its comment, as stored (keys lower-cased)
    problems: list[str]  # empty: verified
    sidecars: list[str] = field(default_factory=list)  # the checksum sidecars checked (URIs)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(output: BinaryIO, source: BinaryIO | None = None) -> Verification:
    """Check an output against its own provenance: its coded pictures are the ones PS-SR wrote
    (`video_sha256`), and with `source`, that file is the one it was made from (`source_sha256`).
    NotProvenanced or MediaError as `read_provenance`."""
    tags = read_tags(output)
    provenance = provenance_of(tags)
    problems = []
    output.seek(0)
    if provenance.video_sha256 is None:
        problems.append(f"no {PREFIX}video_sha256: the video stream cannot be checked")
    elif (digest := video_digest(output)) != provenance.video_sha256:
        problems.append(
            f"video stream changed since PS-SR wrote it: sha256 {digest}, recorded {provenance.video_sha256}"
        )
    if source is not None:
        try:
            digest = file_sha256(source)
        except OSError as exc:
            raise MediaError(f"cannot read the source: {exc}") from exc
        if digest != provenance.source_sha256:
            problems.append(f"source sha256 {digest} is not the recorded {provenance.source_sha256}")
    ours = {k: v for k, v in tags.items() if k.startswith(PREFIX) or k == COMMENT}
    return Verification(provenance, ours, problems)


def verify_stored(storage: Storage, output_uri: str, source_uri: str | None = None) -> Verification:
    """`verify` on stored files (local paths or s3:// URIs), and the output's checksum sidecars
    (OUTPUT.md5, OUTPUT.sha256) where there are any; StorageError when one cannot be opened."""
    with storage.open_read(output_uri) as output:
        if source_uri is None:
            result = verify(output)
        else:
            with storage.open_read(source_uri) as source:
                result = verify(output, source)
        sidecars = {f"{output_uri}.{a}": a for a in SIDECARS if storage.exists(f"{output_uri}.{a}")}
        if sidecars:
            digests = file_digests(output)
            name = output_uri.rsplit("/", 1)[-1]
            for uri, algorithm in sidecars.items():
                result.problems.extend(_sidecar_problems(storage.read_bytes(uri), uri, name, digests.of(algorithm)))
            result.sidecars = list(sidecars)
    return result


def _sidecar_problems(text: bytes, uri: str, name: str, digest: str) -> list[str]:
    try:
        listed = parse_checksum_list(text.decode("utf-8", errors="replace"))
    except ValueError as exc:
        return [f"{uri}: {exc}"]
    if name not in listed:
        return [f"{uri}: lists no {name!r}"]
    if listed[name] != digest:
        return [f"{uri}: says {listed[name]}, the file's is {digest}"]
    return []
