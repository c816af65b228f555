"""Concatenate chunk files by stream copy and copy the source's audio and subtitle streams.

Memory stays O(1) in video length: chunk packets and source packets are merged lazily by
time, and only the reorder window of pts (a handful of ints) is held for dts. Disk too: chunks
are opened one at a time (`open_chunk` may read them from object storage as they are needed) and
the output may be any seekable writer (`Storage.open_write` streams it to its store).
"""

from __future__ import annotations

import ctypes
import hashlib
import heapq
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from fractions import Fraction
from itertools import chain
from typing import BinaryIO

import av
from av.container import InputContainer, OutputContainer
from av.packet import Packet
from av.rational import AVRational
from av.stream import Stream

from .audio_timing import AudioRetimer
from .decode import Source, decoded_frames, open_source, video_stream
from .encode import FORMATS, container_options, reorder_depth, with_dts
from .errors import MediaError, no_partial_file
from .fixity import FileDigests

# Container tags that describe the source file itself, not its content.
_FILE_TAGS = {"major_brand", "minor_version", "compatible_brands", "encoder"}
# MP4/MOV keep only the tags they have an atom for, unless every tag is written as a QuickTime
# metadata key (mdta): the provenance keys need that.
_MOV_TAGS = {"movflags": "+use_metadata_tags"}


# Chunk name -> the chunk to read, for as long as the block lasts (a path, or a reader over storage).
ChunkOpener = Callable[[str], AbstractContextManager[Source]]


@dataclass(frozen=True)
class ChunkScan:
    """What one read of every chunk tells before the output's header is written."""

    reorder_depth: int  # `reorder_depth` over every chunk: how far dts must trail pts
    video_sha256: str | None  # of the coded pictures (fixity.video_digest), when asked for


@dataclass(frozen=True)
class StitchStats:
    frames: int
    duration_s: float  # from the first packet's start to the last one's end (all streams)
    audio_streams: int
    subtitle_streams: int
    audio_streams_retimed: int = 0  # copied with timestamps rebuilt (pipeline/media/audio_timing.py)
    video_sha256: str | None = None  # of the coded pictures (fixity.video_digest), when taken
    file: FileDigests | None = None  # of the output file as uploaded


def stitch_chunks(
    chunks: Sequence[str],
    source: Source,
    out: str | BinaryIO,
    *,
    container_format: str,
    sample_aspect_ratio: Fraction | None = None,
    metadata: dict[str, str] | None = None,
    retime_audio: tuple[int, ...] = (),
    timecode: str | None = None,
    open_chunk: ChunkOpener = nullcontext,
    scan: ChunkScan | None = None,
) -> StitchStats:
    """Write `out` (a path, or a seekable writer): the chunks' video (in order, no re-encode) plus
    every audio and subtitle stream of `source` unchanged, with the source's display rotation and
    container tags, the video's `sample_aspect_ratio` and the container tags in `metadata` (which
    replace source tags of the same name, whatever their case: Matroska upper-cases them). The
    audio streams in `retime_audio` (source indices; the probe's `audio_retimed`) get timestamps
    rebuilt from their samples. `timecode` (the probe's, checked) is the output's start timecode: a
    `tmcd` track in MP4/MOV, the video stream's TIMECODE tag in Matroska; the source's own timecode
    tags are not copied (a malformed one would travel otherwise). `chunks` are paths, or names that
    `open_chunk` opens; `scan` is `scan_chunks`' answer when the caller already has it.

    Video pts are kept; dts are rebuilt from pts so they increase strictly across chunk
    boundaries (B-frames start a chunk's dts before its first pts) and never exceed pts.
    MediaError: no chunks, chunks that overlap in time or differ in codec parameters, or a
    source stream the output container cannot hold. A failed stitch leaves no file at a path
    (a writer is its owner's to discard).
    """
    if container_format not in FORMATS:
        raise ValueError(f"unknown container {container_format!r}")
    scan = scan or scan_chunks(chunks, open_chunk)
    rotation = _source_rotation(source)
    with no_partial_file(out, "stitching"), ExitStack() as stack:
        src = stack.enter_context(open_source(source))
        with _opened(chunks[0], open_chunk) as chunk0:  # open only for its stream's parameters
            template = video_stream(chunk0)
            options = container_options(container_format, template.time_base)
            if container_format in ("mp4", "mov"):
                options |= _MOV_TAGS
            out_file = stack.enter_context(av.open(out, "w", format=FORMATS[container_format], options=options))
            out_video, copied = _add_streams(out_file, template, src, container_format, metadata or {})
            if timecode:
                out_video.metadata["timecode"] = timecode
                # MP4/MOV's tmcd track counts frames at the stream's rate, which a copied stream lacks.
                out_video.codec_context.framerate = template.average_rate or template.guessed_rate
            if rotation:
                out_video.set_display_rotation(rotation)
            if sample_aspect_ratio:
                out_video.codec_context.sample_aspect_ratio = sample_aspect_ratio  # MP4/MOV pasp
                if container_format == "mkv":
                    _set_stream_sample_aspect_ratio(out_video, sample_aspect_ratio)
            out_file.start_encoding()  # the muxer fixes each stream's time base here
        video = with_dts(_chunk_packets(chunks, out_video, open_chunk), scan.reorder_depth)
        frames, start, end = 0, None, Fraction(0)
        retimers = {i: AudioRetimer(src.streams[i]) for i in retime_audio if i in copied}
        for packet in heapq.merge(video, _source_packets(src, copied, retimers), key=_dts_seconds):
            frames += packet.stream is out_video
            if packet.pts is not None:
                first = packet.pts * packet.time_base
                start = first if start is None else min(start, first)
                end = max(end, first + (packet.duration or 0) * packet.time_base)
            out_file.mux(packet)
    return StitchStats(
        frames=frames,
        duration_s=float(end - (start or 0)),
        audio_streams=sum(s.type == "audio" for s in copied.values()),
        subtitle_streams=sum(s.type == "subtitle" for s in copied.values()),
        audio_streams_retimed=len(retimers),
        video_sha256=scan.video_sha256,
    )


def scan_chunks(chunks: Sequence[str], open_chunk: ChunkOpener = nullcontext, digest: bool = False) -> ChunkScan:
    """Read every chunk's video packets once (one chunk open at a time): their reorder depth and,
    with `digest`, the digest of their coded pictures, checking on the way that the chunks can
    share one stream: same codec headers, unique pts, each chunk later than the one before."""
    if not chunks:
        raise MediaError("no chunks to stitch")
    depth, extradata, previous_end = 0, None, None
    hasher = hashlib.sha256() if digest else None
    for n, name in enumerate(chunks):
        with _opened(name, open_chunk) as chunk:
            stream = video_stream(chunk)
            if n == 0:
                extradata = stream.codec_context.extradata
            elif stream.codec_context.extradata != extradata:
                raise MediaError(f"chunk {n} was encoded with other codec parameters than chunk 0")
            pts = []
            for packet in chunk.demux(stream):
                if packet.size:
                    pts.append(None if packet.pts is None else packet.pts * Fraction(stream.time_base))
                    if hasher is not None:  # as fixity.video_digest hashes a file's pictures
                        hasher.update(bytes(packet))
        if not pts:
            raise MediaError(f"chunk {n} holds no video packets")
        if None in pts or len(set(pts)) != len(pts):
            raise MediaError(f"chunk {n} has missing or repeated pts")
        if previous_end is not None and min(pts) <= previous_end:
            raise MediaError(f"chunk {n} starts before chunk {n - 1} ends (chunks out of order or overlapping)")
        previous_end = max(pts)
        depth = max(depth, reorder_depth(pts))
    return ChunkScan(depth, hasher.hexdigest() if hasher is not None else None)


@contextmanager
def _opened(name: str, open_chunk: ChunkOpener) -> Iterator[InputContainer]:
    with open_chunk(name) as chunk, open_source(chunk) as container:
        yield container


def _add_streams(
    out: OutputContainer, template: Stream, src: InputContainer, container_format: str, metadata: dict[str, str]
) -> tuple[Stream, dict[int, Stream]]:
    """The output video stream and {source stream index: output stream} for audio and subtitles."""
    out_video = out.add_stream_from_template(template, opaque=True)  # stream copy: no encoder needed
    out_video.time_base = template.time_base
    replaced = {k.lower() for k in metadata}
    kept = {k: v for k, v in src.metadata.items() if k not in _FILE_TAGS and k.lower() not in replaced | {"timecode"}}
    out.metadata.update(kept)
    out.metadata.update(metadata)
    copied = {}
    supported = out.supported_codecs  # names of every coder (decoders too) of the codecs it can hold
    for stream in chain(src.streams.audio, src.streams.subtitles):
        if stream.codec.name not in supported:
            hint = "; use the mkv container" if container_format != "mkv" else ""
            raise MediaError(
                f"source stream #{stream.index} ({stream.type}, {stream.codec.canonical_name}) "
                f"cannot be stored in {container_format}{hint}"
            )
        copied[stream.index] = out.add_stream_from_template(stream)
        copied[stream.index].metadata.update(stream.metadata)
        copied[stream.index].disposition = stream.disposition
    return out_video, copied


# Where PyAV keeps the AVStream pointer in its Stream object (after the object header and Cython's
# vtable pointer), and where AVStream keeps index, time_base and sample_aspect_ratio (FFmpeg 7-8).
_STREAM_PTR_OFFSET = 24
_AVSTREAM_INDEX, _AVSTREAM_TIME_BASE, _AVSTREAM_SAR = 8, 32, 72


def _set_stream_sample_aspect_ratio(stream: Stream, sar: Fraction) -> None:
    """Set AVStream.sample_aspect_ratio, which PyAV does not expose: the Matroska muxer writes the
    display size from it alone (MP4/MOV take the codec's, and only H.264/HEVC carry one in their
    bitstream), so without it an anamorphic FFV1 or AV1 master would play at the wrong shape.

    The layout is checked on fields whose values we know (index, time base) before anything is
    written; a PyAV or FFmpeg whose layout differs fails the stitch instead of writing blind.
    """
    address = ctypes.c_void_p.from_address(id(stream) + _STREAM_PTR_OFFSET).value
    time_base = Fraction(stream.time_base)
    if (
        not address
        or ctypes.c_int.from_address(address + _AVSTREAM_INDEX).value != stream.index
        or tuple((ctypes.c_int * 2).from_address(address + _AVSTREAM_TIME_BASE))
        != (time_base.numerator, time_base.denominator)
    ):
        raise MediaError("cannot store the sample aspect ratio in Matroska with this PyAV/FFmpeg build")
    field = (ctypes.c_int * 2).from_address(address + _AVSTREAM_SAR)
    field[0], field[1] = sar.numerator, sar.denominator


def _source_rotation(source: Source) -> int:
    """The display rotation of the source video (PyAV exposes it on frames, not streams)."""
    with open_source(source) as src:
        frame = next(decoded_frames(src, video_stream(src)), None)
    return int(frame.rotation) if frame is not None else 0


def _chunk_packets(chunks: Sequence[str], out_video: Stream, open_chunk: ChunkOpener) -> Iterator[Packet]:
    """Video packets of every chunk in order, rescaled to the output time base, dts unset."""
    for name in chunks:
        with _opened(name, open_chunk) as chunk:
            for packet in chunk.demux(video_stream(chunk)):
                if packet.size == 0:  # the demuxer's end-of-stream marker
                    continue
                packet.rescale_ts(AVRational(out_video.time_base))
                packet.dts = None
                packet.stream = out_video
                yield packet


def _source_packets(
    src: InputContainer, copied: dict[int, Stream], retimers: dict[int, AudioRetimer]
) -> Iterator[Packet]:
    if not copied:
        return
    for packet in src.demux([src.streams[i] for i in copied]):
        retimer = retimers.get(packet.stream.index)
        if packet.size == 0 or (retimer is None and packet.dts is None and packet.pts is None):
            continue
        if retimer is not None:
            retimer.retime(packet)
        packet.stream = copied[packet.stream.index]
        yield packet


def _dts_seconds(packet: Packet) -> Fraction:
    ts = packet.dts if packet.dts is not None else packet.pts
    return ts * packet.time_base
