"""Audio streams whose packets do not carry increasing timestamps, found at probe time and retimed
at the stitch.

A careless stream-copy trim (of an AVI, say) can leave every audio packet at pts 0. Copied as they
are, the muxer refuses them ("Invalid argument") after every frame has been upscaled; found by the
probe, the stitch instead gives each packet the time its samples follow on from the packets before
(the samples are counted by decoding the packet: no re-encode, the audio bits stay as they were).
"""

from __future__ import annotations

from fractions import Fraction

from av.audio.stream import AudioStream
from av.packet import Packet

from .errors import MediaError


class AudioTimestampCheck:
    """Fed every packet of the audio streams during the probe's demux; `broken` lists the streams
    with a packet whose dts is missing or not above the one before."""

    def __init__(self, streams: list[AudioStream]) -> None:
        self.streams = streams
        self._last: dict[int, int | None] = {s.index: None for s in streams}
        self._broken: set[int] = set()

    def see(self, packet: Packet) -> None:
        index = packet.stream.index
        if packet.size == 0 or index in self._broken:
            return
        dts = packet.dts if packet.dts is not None else packet.pts
        last = self._last[index]
        if dts is None or (last is not None and dts <= last):
            self._broken.add(index)
        self._last[index] = dts

    @property
    def broken(self) -> tuple[int, ...]:
        return tuple(sorted(self._broken))


class AudioRetimer:
    """Gives the packets of one audio stream pts = dts = the samples before them (in 1/sample_rate),
    counting each packet's samples with the stream's own decoder."""

    def __init__(self, stream: AudioStream) -> None:
        self.stream = stream
        self.rate = stream.codec_context.sample_rate
        if not self.rate:
            raise MediaError(f"audio stream #{stream.index} has timestamps that do not increase and no sample rate")
        self.samples = 0

    def retime(self, packet: Packet) -> None:
        frames = self.stream.codec_context.decode(packet)
        count = sum(frame.samples for frame in frames) or (self.stream.codec_context.frame_size or 0)
        if not count:
            raise MediaError(
                f"audio stream #{self.stream.index} has timestamps that do not increase, "
                "and its packets' lengths cannot be read to rebuild them"
            )
        packet.time_base = Fraction(1, self.rate)
        packet.pts = packet.dts = self.samples
        packet.duration = count
        self.samples += count
