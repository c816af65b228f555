"""The segment record: across Ray and back unchanged, absent values as Ray Data needs them, and the
manifest's segment columns read off it."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import numpy as np
import pytest

from actors.rows import records_from_batch, records_to_batch
from pipeline.manifest.columns import manifest_row
from pipeline.runs.resume import chunk_record, reused
from pipeline.segment import SEGMENT_SCHEMA, SegmentRecord


def planned(**fields: object) -> SegmentRecord:
    plan = dict(
        video_key="a/v.mp4", input_uri="s3://in/a/v.mp4", segment_index=1, segment_count=3, scene_index=0,
        core_start=8, core_end=16, context_start=5, context_end=19, lr_width=32, lr_height=24,
        hr_width=64, hr_height=48, chunk_uri="s3://out/_pssr/staging/h/v/chunk_000001.mp4",
        time_base_num=1, time_base_den=90000, rate_num=25, rate_den=1,
        colour_primaries=1, colour_transfer=1, colour_matrix=1, colour_range=1,
    )  # fmt: skip
    return SegmentRecord(**plan | fields)


def measured() -> SegmentRecord:
    return planned(
        tfs=0.4, flicker=None, lr_psnr=44.5, detail_gain=0.02, light_delta=0.001, tfs_worst_frame=9,
        flicker_worst_frame=None, lr_psnr_worst_frame=12, start_s=0.32, end_s=0.6, tfs_worst_s=0.36,
        encoder="libx264", encoded_at=datetime(2026, 1, 2, 3, 4, 5, 250000, tzinfo=timezone.utc),
    )  # fmt: skip


def test_a_row_carries_absent_values_as_ray_data_needs_them():
    row = planned().to_row()
    assert math.isnan(row["tfs"]) and row["tfs_worst_frame"] == -1 and row["error"] == ""
    assert math.isnan(row["encoded_at"]) and row["reference_uri"] == "" and "frames" not in row
    assert {"lr", "hr", "pts"} <= set(row) and not {"lr", "hr", "pts"} & set(planned().to_row(frames=False))


def test_through_a_ray_batch_and_back_unchanged():
    segment = measured()
    segment.lr = np.ones((14, 24, 32, 3), np.uint8)
    (back,) = records_from_batch(records_to_batch([segment]))  # numpy scalars on the way back
    assert manifest_row(back) == manifest_row(segment) and back.frames == 8 and back.core == slice(3, 11)
    assert type(back.segment_index) is int and type(back.lr_psnr) is float and back.flicker is None
    assert np.array_equal(back.lr, segment.lr) and back.rate == 25 and back.time_base.denominator == 90000


def test_a_row_with_a_field_the_record_does_not_have_is_refused():
    with pytest.raises(ValueError, match="video_id"):
        SegmentRecord.from_row({**planned().to_row(), "video_id": "v"})


def test_the_manifest_columns_are_the_records_fields_in_order():
    columns = list(manifest_row(planned()))
    assert columns == SEGMENT_SCHEMA.names and "seekable" not in columns and "lr" not in columns
    assert SEGMENT_SCHEMA.field("tfs").nullable and not SEGMENT_SCHEMA.field("core_start").nullable
    assert SEGMENT_SCHEMA.field("chunk_uri").nullable  # always set in flight; the manifest allows a null


def test_a_chunk_record_gives_back_the_segment_an_earlier_run_finished():
    record = json.loads(chunk_record(measured()))
    # The record's form is the row's (NaN, -1, ""), so records written before the typed record read back too.
    assert record["flicker_worst_frame"] == -1 and math.isnan(record["flicker"]) and record["reference_uri"] == ""
    again = reused(planned(job_id="next"), record)
    assert again.reused and again.job_id == "next" and manifest_row(again) | {"job_id": "", "reused": False} == (
        manifest_row(measured())
    )
    assert reused(planned(core_end=15), record) is None  # other frames
    assert reused(planned(reference_uri="hr/v.mp4"), record) is None  # figures against another reference
