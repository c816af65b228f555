-- PS-SR manifests in DuckDB (https://duckdb.org; not a dependency of this project): `duckdb < examples/manifests.sql`
-- after putting your OUTPUT in place of out/. The columns are documented in docs/manifest.md.
--
-- On S3, read s3://bucket/prefix/_pssr/manifest/... instead, after:
--   INSTALL httpfs; LOAD httpfs;
--   CREATE SECRET (TYPE s3, PROVIDER credential_chain);                       -- AWS: the SDK's credential chain
--   CREATE SECRET (TYPE s3, PROVIDER credential_chain, ENDPOINT '127.0.0.1:9000', URL_STYLE 'path', USE_SSL false);
--                                                                              -- or MinIO / infra/local_s3.sh

-- One file per video per run; union_by_name: manifests of older versions may lack newer columns.
CREATE VIEW videos AS SELECT * FROM read_parquet('out/_pssr/manifest/videos/*/*.parquet', union_by_name = true);
CREATE VIEW segments AS SELECT * FROM read_parquet('out/_pssr/manifest/segments/*/*.parquet', union_by_name = true);

-- Manifests accumulate: a video's state is its latest row, and that run's segments.
CREATE VIEW latest AS SELECT * FROM videos
    QUALIFY row_number() OVER (PARTITION BY video_key ORDER BY finished_at DESC) = 1;
CREATE VIEW latest_segments AS SELECT s.* FROM segments s JOIN latest v USING (job_id, video_key);

-- Failed videos and why.
SELECT video_key, error, job_id, finished_at FROM latest WHERE status = 'failed' ORDER BY video_key;

-- Segments to review, with their times (seconds from the video's first frame) and the flags' values.
SELECT video_key, segment_index, round(start_s, 3) AS start_s, round(end_s, 3) AS end_s,
       core_start AS first_frame, core_end - 1 AS last_frame,
       flag_tfs, tfs, flag_flicker, flicker, flag_lr_psnr, lr_psnr, flag_light_delta, light_delta
FROM latest_segments WHERE flagged ORDER BY video_key, segment_index;

-- Benchmark mode (a job with --reference): the figures against the HR reference.
SELECT video_key, psnr, ssim, ewarp FROM latest WHERE psnr IS NOT NULL ORDER BY video_key;

-- Throughput per video: frames per wall second from planning to manifest.
SELECT video_key, frames_out, round(wall_s, 1) AS wall_s, round(frames_out / wall_s, 2) AS fps
FROM latest WHERE status = 'ok' ORDER BY fps;
