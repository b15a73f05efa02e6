# One task runner. `make run` and `make test` set everything up from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install browser run test test-slow lint typecheck unit bench examples clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0   # the CPU wheel; an unpinned torch pulls CUDA
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Debian's chromium for the browser tests (tests/web), installed when missing and run as root;
# without it those tests are skipped with one line that says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	  || echo "chromium could not be installed: the browser tests will be skipped"; }

run: install  ## ingest examples/ and serve on http://127.0.0.1:8000
	$(BIN)/kb ingest examples
	$(BIN)/kb serve --host 127.0.0.1 --port 8000

test: install lint typecheck unit  ## lint, type checks and the tests

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

unit: install browser
	HF_HUB_OFFLINE=1 $(BIN)/pytest -q -m "not slow"

test-slow: install browser  ## the long runs too: SciFact through kb eval, kb serve as a process, the kill -9 drill
	HF_HUB_OFFLINE=1 $(BIN)/pytest -q -m slow

bench: install  ## ingest benchmark over the shared real-world PDFs
	HF_HUB_OFFLINE=1 $(BIN)/python bench/ingest.py ../shared/data/pdfs

examples: install  ## regenerate the example PDFs
	$(BIN)/python scripts/make_examples.py

clean:
	rm -rf $(VENV) .kb .pytest_cache .mypy_cache .ruff_cache artifacts
