"""`pssr bench throughput`: frames/s of every stage alone, of the whole pipeline, and of baselines,
on the same clip, in one run.

Definitions (also in docs/benchmarks.md, "Throughput"):

* Stage alone: the pipeline's own stage code (plan task, `decode_segment`, `StrongStage`,
  `LightStage`, `encode_segment`, `stitch_video`) run over every segment of the clip in this
  process, without Ray, on ONE unit: torch threads 1 on CPU, one GPU on CUDA. A stage's busy
  seconds per frame are its CPU seconds (all threads of the process: PyAV's decoder threads count)
  over the clip's frames for the CPU stages, and its wall seconds (synchronised) for the model
  stages on a GPU. CPU seconds are what a CPU stage takes from the cores, and they barely move
  when other programs load the machine; its fps is 1 / busy seconds per frame.
* Ideal (roofline): for each resource kind (CPU cores, GPUs), the units the job has over the sum
  of the busy seconds per frame of the stages that run on it; the smallest such figure
  (`roofline`). The plan stage (probe and scene detection, a CPU task of the job) is included.
* End to end: the real job (`run_job`) on the same clip in a fresh process with its own local Ray
  cluster (`jobs.bench.memory.measure_run`, which also samples every process's peak RSS):
  "with start-up" from launching that process to the job's end (imports and Ray start included);
  "job" from `run_job`'s call to its return (Ray up; listing, planning, pool start-up with model
  loading, every segment, stitching); "steady" the rate once the pipeline is full, from the chunks'
  writing times (the segments manifest's `encoded_at`; `steady_fps`), so start-up and the first
  segment's trip through every stage (the pipeline's fill) do not enter. Efficiency = fps / ideal.
* Baselines: a plain PyAV decode -> Lanczos-3 -> encode loop in one process (the floor of any
  pipeline), and model-only fps at the same sizes, all cores, random weights: the strong+light pair
  and SRVGGNetCompact (`jobs.bench.quality.model_speed`) and RRDBNet (on fewer frames: it is slow).
* Fused vs separate: model-only, one unit, per segment: strong then light per pass in one process,
  against the two models' separate passes; and end to end, the job with both models in one pool
  (`fused: true`, as many actors as the two pools have together) against the two pools.
"""
