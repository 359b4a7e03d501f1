# Set-up and the two jobs of the README: `make demo` and `make test`.
# torch is pinned to the CPU wheel that lies on our machines; pyproject keeps the range open.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
DEMO ?= demo

.PHONY: install test test-fast check-wheel demo demo-random system-deps clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e '.[test,postgres]'
	touch $@

install: $(BIN)/.installed

# PostgreSQL and Chromium for the catalog and browser tests (Debian packages; needs root).
system-deps:
	bash scripts/install_system_deps.sh

test: install system-deps
	$(BIN)/python -m pytest -q

# The wheel and sdist built, the wheel installed in a fresh venv, the demo run there (also in `test`).
check-wheel: install
	$(BIN)/python -m pytest -q tests/test_wheel.py

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not browser and not postgres"

# The main job on a small generated library with the default model (laion/clap-htsat-fused).
demo: install
	$(BIN)/python scripts/make_demo_library.py $(DEMO)/library
	@$(BIN)/sfx-index build $(DEMO)/library --index $(DEMO)/index || { \
	  echo "make demo: the build stopped (the line above says why); without the model's weights, 'make demo-random' runs the same demo with a random-weight checkpoint" >&2; exit 1; }
	$(BIN)/sfx-search "rain on a roof" --index $(DEMO)/index
	$(BIN)/sfx-search "a short click" --index $(DEMO)/index

# The same with a random-weight checkpoint, for machines that cannot download the model.
demo-random: install
	test -d $(DEMO)/clap-random || $(BIN)/python scripts/make_random_clap.py $(DEMO)/clap-random
	$(MAKE) demo SFX_MODEL=$(abspath $(DEMO)/clap-random)

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache *.egg-info
