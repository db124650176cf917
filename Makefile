# blip2-lora: `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# 2 cores: each parallel worker gets one torch thread (2 threads x 2 workers measured 2-5x slower)
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export TOKENIZERS_PARALLELISM ?= false
WORKERS ?= 2
DEMO_THREADS ?= $(shell nproc 2>/dev/null || echo 2)
NBDEV_SKIP ?= ^[_.]

.PHONY: install test check-sync nbtest pytest demo lab docs docs-check clean test-gpu gpu-pack

$(STAMP): settings.ini setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip "setuptools<82" wheel
	$(BIN)/python -m pip install -q "$(TORCH)"   # torch first: an unpinned torch pulls a multi-GB CUDA build
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

check-sync: $(STAMP)   ## fail if nbdev_export / nbdev_clean would change a tracked file
	$(BIN)/python tools/check_sync.py

nbtest: $(STAMP)       ## every notebook as a test; cuda/hub/slow cells skipped (tst_flags)
	$(BIN)/nbdev_test --n_workers $(WORKERS) --skip_file_re '$(NBDEV_SKIP)' --timing

pytest: $(STAMP)
	$(BIN)/python -m pytest -q -n $(WORKERS) tests/

test: check-sync nbtest pytest docs-check

docs: $(STAMP)         ## docs site offline: nbdev proc_nbs() -> mkdocs-material -> _docs/ (with Quarto: nbdev_docs)
	$(BIN)/python tools/docs.py build

SHOTS ?= _docs/_screenshots
docs-check: docs       ## every page in headless Chromium (SKIPPED loudly without chromium); `SHOTS=docs` updates docs/*.png
	$(BIN)/python tools/docs.py check --shots $(SHOTS)

# The GPU lane: on a CUDA machine, placement tests on the GPU, the full-size benchmark and the tutorial's cuda cells,
# one table at the end (tools/gpu_lane.py); without CUDA it refuses with one line. The GPU image has its own torch:
# `make test-gpu GPU_PY=python3` there, after `make gpu-pack` here (carry .gpu). Dry run on the CPU: GPU_ARGS=--dry-run.
GPU_PY   ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)
GPU_ARGS ?=
test-gpu:
	$(GPU_PY) tools/gpu_lane.py $(GPU_ARGS)

gpu-pack:              ## wheels the GPU image lacks, into .gpu/ (git-ignored)
	bash tools/gpu_pack.sh

# the demo is one process: it gets every core (the 1-thread export above is for parallel test workers)
demo: export OMP_NUM_THREADS := $(DEMO_THREADS)
demo: export MKL_NUM_THREADS := $(DEMO_THREADS)
demo: $(STAMP)
	$(BIN)/blip2-lora demo

LAB_ARGS ?=
lab: $(STAMP)          ## JupyterLab on nbs/ via tools/lab.py (--allow-root only as root; tests/test_lab.py runs it headless)
	$(BIN)/python -c 'import jupyterlab' 2>/dev/null || $(BIN)/python -m pip install -q -e ".[lab]"
	$(BIN)/python tools/lab.py $(LAB_ARGS)

clean:
	rm -rf _docs _proc build dist *.egg-info
