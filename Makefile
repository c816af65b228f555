# Two commands on a fresh machine: `make run` and `make test` (see README.md); `make test-fast` for the unit tests alone.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch, pinned: a bare `torch` pulls a multi-GB CUDA build on CPU machines.
TORCH_SPEC ?= torch==2.13.0
INPUT ?= samples/sample.mp4
OUTPUT ?= out
ARGS ?=
PYTEST_ARGS ?=
# Quality benchmark: held-out natural photos and footage (fetched once from Debian), the second
# table's digital art, results folder, factor, options.
BENCH_PHOTOS ?= .cache/bench-natural
BENCH_ART ?= .cache/bench-art
BENCH_OUT ?= bench-out
BENCH_SCALE ?= 4
BENCH_ARGS ?=
# Memory benchmark (`make bench`): options of `pssr bench memory`, e.g. "--frames 32 --factor 10".
BENCH_MEMORY_ARGS ?=
# Throughput benchmark (`make bench`): options of `pssr bench throughput`, e.g. "--scale 4 --frames 120".
BENCH_THROUGHPUT_ARGS ?=
TRAIN_PHOTOS ?= .cache/train-photos
TRAIN_SCALE ?= 4
TRAIN_OUT ?= train-out/tiny_x$(TRAIN_SCALE)
TRAIN_ARGS ?=

.PHONY: install run test test-fast plan clean bench bench-memory bench-throughput bench-quality bench-quality-art train docs

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[test]"
	touch $@

install: $(BIN)/.installed

samples/sample.mp4: | $(BIN)/.installed
	$(BIN)/python -m jobs.run.sample $@

# Upscale INPUT (default: a generated 4 s sample with audio) into OUTPUT on a local Ray cluster.
run: install $(if $(filter samples/sample.mp4,$(INPUT)),samples/sample.mp4)
	$(BIN)/pssr run "$(INPUT)" "$(OUTPUT)" $(ARGS)

plan: install $(if $(filter samples/sample.mp4,$(INPUT)),samples/sample.mp4)
	$(BIN)/pssr plan "$(INPUT)" $(ARGS)

# Every test: unit tests, whole jobs on a local Ray cluster, S3 over HTTP (CI runs this).
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The unit tests: no Ray, no whole job (tests marked `slow` are left out); a few minutes on 2 cores.
test-fast: install
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# docs/reference/cli.md and config.md, generated from the click commands and JobSpec (tests/test_docs.py checks them).
docs: install
	$(BIN)/python -m jobs.cli.reference

clean:
	rm -rf $(OUTPUT) samples .pytest_cache

# Fetched into a .part folder and renamed, so an interrupted download is not taken for a set.
$(BENCH_PHOTOS): | $(BIN)/.installed
	rm -rf "$@.part"
	$(BIN)/python -m jobs.train.photos natural "$@.part"
	mv "$@.part" "$@"

$(TRAIN_PHOTOS): | $(BIN)/.installed
	rm -rf "$@.part"
	$(BIN)/python -m jobs.train.photos train "$@.part"
	mv "$@.part" "$@"

# Train the tiny pair at TRAIN_SCALE as the shipped weights were (docs/models/); resumable. x4 takes four
# rounds, each from the one before's files (kept in jobs/train/configs/init/, as the x3 and x2 recipes start
# from the first's).
train: install | $(TRAIN_PHOTOS)
	$(BIN)/pssr train "$(TRAIN_PHOTOS)" --config jobs/train/configs/train-tiny-x$(TRAIN_SCALE).yaml --out "$(TRAIN_OUT)" $(TRAIN_ARGS)
	for round in r2 r3 r4; do \
		if [ -f jobs/train/configs/train-tiny-x$(TRAIN_SCALE)-$$round.yaml ]; then \
			$(BIN)/pssr train "$(TRAIN_PHOTOS)" --config jobs/train/configs/train-tiny-x$(TRAIN_SCALE)-$$round.yaml \
				--out "$(TRAIN_OUT)_$$round" $(TRAIN_ARGS) || exit 1; fi; done

$(BENCH_ART): | $(BIN)/.installed
	rm -rf "$@.part"
	$(BIN)/python -m jobs.train.photos art "$@.part"
	mv "$@.part" "$@"

# Quality and speed of bicubic, Lanczos and the models through the real pipeline, the neighbour-frame
# ablation and the motion sweep, on natural footage held out from training (docs/benchmarks.md).
bench-quality: install | $(BENCH_PHOTOS)
	$(BIN)/pssr bench quality --photos "$(BENCH_PHOTOS)" --out "$(BENCH_OUT)" --scale $(BENCH_SCALE) $(BENCH_ARGS)

# The same on digital art (Plasma's wallpapers), the second table.
bench-quality-art: install | $(BENCH_ART)
	$(BIN)/pssr bench quality --photos "$(BENCH_ART)" --out "$(BENCH_OUT)-art" --scale $(BENCH_SCALE) --no-motion $(BENCH_ARGS)

# The benchmarks that need nothing fetched, one after another (timings and peaks must not overlap).
.NOTPARALLEL: bench
bench: bench-memory bench-throughput

# Peak RSS of the driver and every Ray process, for a clip and one 10x longer (docs/benchmarks.md, "Memory").
bench-memory: install
	$(BIN)/pssr bench memory --out "$(BENCH_OUT)" $(BENCH_MEMORY_ARGS)

# Frames/s of each stage alone, of the whole job against its roofline, and of baselines (docs/benchmarks.md, "Throughput").
bench-throughput: install
	$(BIN)/pssr bench throughput --out "$(BENCH_OUT)" $(BENCH_THROUGHPUT_ARGS)
