# scalebench: `make test` and `make demo` each create .venv when it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pytest workers (pytest-xdist): two on the project's 2-core machine; `make test TEST_WORKERS=auto` uses every core,
# `TEST_WORKERS=0` runs in one process.
TEST_WORKERS ?= 2

# Large tensors are mmap'd and page-faulted on every allocation with glibc's defaults;
# these tunables keep them in the heap (measured 2x per-image speed on 2 cores; docs/performance.md).
export GLIBC_TUNABLES ?= glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1073741824:glibc.malloc.top_pad=268435456

.PHONY: test demo lint venv clean bench

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check scalebench tests benchmarks
	$(BIN)/ruff format --check scalebench tests benchmarks

test: $(STAMP)
	$(BIN)/ruff check scalebench tests benchmarks
	@set +e; $(BIN)/python -m pytest -q -n $(TEST_WORKERS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "ERROR: pytest collected no tests; this counts as a failure." >&2; exit 1; fi; \
	if [ $$rc -ne 0 ]; then exit $$rc; fi; \
	$(BIN)/scalebench leaderboard validate --store results --previous docs/leaderboard/leaderboard.json

demo: $(STAMP)
	$(BIN)/python -m scalebench.demo

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
