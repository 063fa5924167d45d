# typoguard: every target installs what it needs first.
PY      ?= python3.11
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
CONFIG  ?= examples/typoguard.toml

.PHONY: install run test bench lint clean

# The policy codec is compiled by mypyc at install (setup.py): a change to it means a reinstall.
$(STAMP): pyproject.toml setup.py src/typoguard/protocols/postfix_policy.py
	@command -v $(PY) >/dev/null || { echo "need $(PY)"; exit 2; }
	if [ "$${CI:-}" = true ]; then bash scripts/install-system-deps.sh; fi
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,bench,postgres]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/typoguard serve --config $(CONFIG)

test: $(STAMP)
	bash scripts/test.sh

bench: $(STAMP)
	$(BIN)/python -m benchmarks

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src
	$(BIN)/mypy src

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
	find src -name '*.so' -delete
