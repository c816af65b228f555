"""Colour description of a video (primaries, transfer, YUV matrix, range) and the RGB <-> YUV
conversions that follow it, so an output is converted and tagged as its source was.

Values are FFmpeg's enums (AVColorPrimaries, AVColorTransferCharacteristic, AVColorSpace,
AVColorRange); 2 (0 for the range) means "unspecified". Untagged YUV is read as players read it:
BT.709 from 720 lines up, BT.601 below, limited range. The output keeps the source's matrix even
though it is larger (an upscaled SD video stays BT.601 and says so): re-matrixing to BT.709 would
shift colours on every player that honours the tag and win nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import av

UNSPECIFIED = 2  # primaries, transfer and matrix
RANGE_UNSPECIFIED, RANGE_LIMITED, RANGE_FULL = 0, 1, 2
MATRIX_RGB, MATRIX_BT709, MATRIX_SMPTE170M = 0, 1, 6

# FFmpeg's names (av_color_*_name), for manifests and messages.
PRIMARIES = {
    1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film", 9: "bt2020",
    10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213",
}  # fmt: skip
TRANSFERS = {
    1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear", 9: "log100",
    10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12",
    16: "smpte2084", 17: "smpte428", 18: "arib-std-b67",
}  # fmt: skip
MATRICES = {
    0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "ycgco", 9: "bt2020nc",
    10: "bt2020c", 14: "ictcp",
}  # fmt: skip
RANGES = {RANGE_LIMITED: "tv", RANGE_FULL: "pc"}
# Matrices swscale converts with (its coefficient table follows AVColorSpace numbering; others
# fall back to BT.601 there, so they are refused rather than converted wrongly).
_SWSCALE_MATRICES = {1, 4, 5, 6, 7, 9, 10}


@dataclass(frozen=True)
class Colour:
    primaries: int = UNSPECIFIED
    transfer: int = UNSPECIFIED
    matrix: int = UNSPECIFIED
    range: int = RANGE_UNSPECIFIED

    def names(self) -> dict[str, str | None]:
        """Manifest columns: FFmpeg's names, None where unspecified."""
        return {
            "color_primaries": PRIMARIES.get(self.primaries),
            "color_transfer": TRANSFERS.get(self.transfer),
            "color_matrix": MATRICES.get(self.matrix),
            "color_range": RANGES.get(self.range),
        }


def frame_colour(frame: av.VideoFrame) -> Colour:
    """The colour tags a decoded frame carries, as they are (unspecified included)."""
    return Colour(int(frame.color_primaries), int(frame.color_trc), int(frame.colorspace), int(frame.color_range))


def resolved(tagged: Colour, height: int, is_rgb: bool) -> Colour:
    """The colour a source is read with: its tags, with the matrix and range of untagged YUV chosen
    as players choose them. Primaries and transfer stay as tagged (unspecified stays unspecified:
    nothing is converted with them, and a guess written into the output would look like a fact)."""
    if is_rgb:
        return Colour(tagged.primaries, tagged.transfer, MATRIX_RGB, RANGE_FULL)
    matrix = tagged.matrix
    if matrix not in _SWSCALE_MATRICES:
        matrix = MATRIX_BT709 if height >= 720 else MATRIX_SMPTE170M
    return Colour(tagged.primaries, tagged.transfer, matrix, tagged.range or RANGE_LIMITED)


def output_colour(source: Colour, pix_fmt: str, height: int) -> Colour:
    """The colour an output in `pix_fmt`, `height` lines high, is converted to and tagged with: the
    source's (resolved) description. An RGB output has no matrix and is full range; a YUV output of
    an RGB source takes the matrix players assume for its height, limited range."""
    if av.VideoFormat(pix_fmt).is_rgb:
        return Colour(source.primaries, source.transfer, MATRIX_RGB, RANGE_FULL)
    if source.matrix == MATRIX_RGB:
        return resolved(Colour(source.primaries, source.transfer), height, is_rgb=False)
    return source


def tag(frame: av.VideoFrame, colour: Colour) -> av.VideoFrame:
    """Write the description onto a frame (swscale tags only the matrix, and not always the same way;
    some encoders, e.g. prores_ks, take the tags from the frames)."""
    frame.color_primaries, frame.color_trc = colour.primaries, colour.transfer
    frame.colorspace, frame.color_range = colour.matrix, colour.range
    return frame
