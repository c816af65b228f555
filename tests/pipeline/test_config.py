import pytest

from pipeline.config import ConfigError, JobSpec, load_job_spec

BASE = {"input": "in/", "output": "out/"}


def test_defaults_and_container_by_codec():
    spec = load_job_spec(None, BASE)
    assert (spec.scale, spec.models.strong, spec.encode.container_format) == (4, "tiny", "mp4")
    assert spec.limits.model_dump() == {"max_width": None, "max_height": None, "max_duration_s": None}
    assert load_job_spec(None, {**BASE, "encode.codec": "ffv1"}).encode.container_format == "mkv"
    assert load_job_spec(None, {**BASE, "encode.codec": "prores"}).encode.container_format == "mov"


def test_yaml_file_with_flags_winning(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("input: s3://a/in/\noutput: s3://a/out/\nscale: 2\nencode: {codec: hevc, crf: 22}\n")
    spec = load_job_spec(job, {"encode.crf": 30, "strong_pool.num_gpus": 0.5, "scale": None})
    assert (spec.scale, spec.encode.codec, spec.encode.crf, spec.strong_pool.num_gpus) == (2, "hevc", 30, 0.5)


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"scale": 5}, "scale"),
        ({"segment.max_core_frames": 0}, "segment.max_core_frames"),
        ({"encode.codec": "mpeg2"}, "encode.codec"),
        ({"encode.crf": 60}, "encode"),  # above 51 is only valid for av1
        ({"strong_pool.num_gpus": -1}, "strong_pool.num_gpus"),
        ({"light_pool.size": 0}, "light_pool.size"),
        ({"models.strong_sha256": "abc"}, "models.strong_sha256"),
        ({"models.light_sha256": "a" * 64}, "models"),  # names a file in weights_dir, which is unset
        ({"segmnt.max_core_frames": 4}, "segmnt"),
        ({"storage.sse_kms_key_id": "k"}, "storage"),  # a KMS key without SSE-KMS
        (
            {"storage.storage_class": "GLACIER"},
            "storage",
        ),  # unreadable by the job itself  # a typo is an error, not silently ignored
        ({"limits.max_width": 0}, "limits.max_width"),
        ({"limits.max_duration_s": -1.0}, "limits.max_duration_s"),
        ({"reference": "s3://"}, "reference"),
        ({"strong_pool.resources": {"GPU": 1}}, "strong_pool.resources"),  # Ray's own: num_gpus sets it
        ({"light_pool.resources": {"light_node": 0}}, "light_pool.resources"),
        ({"light_pool.resources": {"light_node": 0.00001}}, "light_pool.resources"),  # finer than Ray counts
        ({"ray.actor_task_retries": -2}, "ray.actor_task_retries"),  # -1 is "no limit", below is nothing
    ],
)
def test_invalid_values_name_the_field(overrides, field):
    with pytest.raises(ConfigError, match=rf"(?m)^  {field}"):
        load_job_spec(None, {**BASE, **overrides})


def test_pool_resources_from_yaml(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("input: in/\noutput: out/\nstrong_pool: {resources: {strong_node: 1, nvme: 0.25}}\n")
    spec = load_job_spec(job)
    assert spec.strong_pool.resources == {"strong_node": 1.0, "nvme": 0.25}
    assert spec.light_pool.resources == {}


def test_unreadable_or_non_mapping_job_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_job_spec(tmp_path / "missing.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_job_spec(bad)


def test_config_hash_follows_output_affecting_settings_only():
    weights = {"strong": "s", "light": "l"}
    a = JobSpec(**BASE)
    same = JobSpec(
        input="elsewhere/", output="other/", strong_pool={"size": 8}, limits={"max_width": 640}, reference="hr/"
    )
    assert a.config_hash(weights) == same.config_hash(weights)
    assert a.config_hash(weights) != JobSpec(**BASE, scale=2).config_hash(weights)
    assert a.config_hash(weights) != a.config_hash({"strong": "s2", "light": "l"})
    # How a plan is scanned changes no output; field-rate deinterlacing does.
    assert a.config_hash(weights) == JobSpec(**BASE, segment={"range_frames": 100}).config_hash(weights)
    assert a.config_hash(weights) != JobSpec(**BASE, deinterlace_rate="field").config_hash(weights)
