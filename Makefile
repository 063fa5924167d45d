# typoguard: every target installs what it needs first.
PY      ?= python3.11
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
CONFIG  ?= examples/typoguard.toml

.PHONY: install run test bench lint clean deb clients

# The policy codec is compiled by mypyc at install (setup.py): a change to it means a reinstall.
$(STAMP): pyproject.toml setup.py src/typoguard/protocols/postfix_policy.py
	@command -v $(PY) >/dev/null || { echo "need $(PY)"; exit 2; }
	if [ "$${CI:-}" = true ]; then bash scripts/install-system-deps.sh; fi
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,bench,postgres]'
	touch $(STAMP)

install: $(STAMP)

# Byte-compiled as an installed package is (pip and the .deb compile at install; an editable install does
# not, and with PYTHONDONTWRITEBYTECODE set nothing is ever cached): without it every typoguard process
# compiled its modules again, about 0.1 s per start. Up-to-date files are skipped; an edited module whose
# file is stale is compiled again in memory, as Python checks each file's time and size.
PYC = $(BIN)/python -m compileall -q -j 0 src >/dev/null

run: $(STAMP)
	$(PYC)
	$(BIN)/typoguard serve --config $(CONFIG)

test: $(STAMP)
	$(PYC)
	bash scripts/test.sh

bench: $(STAMP)
	$(PYC)
	$(BIN)/python -m benchmarks

lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src
	$(BIN)/mypy src

# typoguard_<version>_<arch>.deb in build/deb/ (docs/adr/0020-debian-package.md): dpkg-buildpackage runs on a
# copy of the checkout (tracked and new files, not .venv or other ignored ones), so the tree stays clean.
DEB_DIR := build/deb
deb:
	if [ "$${CI:-}" = true ]; then bash scripts/install-deb-deps.sh; fi
	@v=$$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml); d=$$(dpkg-parsechangelog -SVersion); \
	  [ "$$v" = "$$d" ] || { echo "make deb: pyproject.toml version $$v != debian/changelog $$d"; exit 2; }
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/src
	git ls-files -z --cached --others --exclude-standard \
	  | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C $(DEB_DIR)/src
	cd $(DEB_DIR)/src && dpkg-buildpackage -b -us -uc
	@ls -l $(DEB_DIR)/*.deb

# The Thunderbird add-on (.xpi) and the webmail extension (.zip) with CONFIG's client bundle packaged in,
# in build/clients/ (docs/clients.md, "Building: make clients").
clients: $(STAMP)
	CONFIG=$(CONFIG) ADDON_VERSION=$(ADDON_VERSION) bash scripts/build-clients.sh

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
	find src -name '*.so' -delete
	find src benchmarks tests -name __pycache__ -prune -exec rm -rf {} +
