# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv first if needed.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.semprior-installed

.PHONY: venv test lint demo docs bench clean browser app gallery test-floors

venv: $(STAMP)

# torch/torchvision first (the pair that works on this machine), then everything under the pins.
# The venv takes about 6.7 GB (torch 2.14.1 for x86_64 is a CUDA build): say so before pip runs out of disk.
VENV_NEEDS_GB := 7
$(STAMP): pyproject.toml constraints.txt
	@free_kb=$$(df -Pk . | awk 'NR==2 {print $$4}'); \
	  if [ ! -d $(VENV)/lib ] && [ "$$free_kb" -lt $$(( $(VENV_NEEDS_GB) * 1024 * 1024 )) ]; then \
	    echo "make: the venv needs about $(VENV_NEEDS_GB) GB free here and $$(( free_kb / 1024 )) MB are;" \
	      "free disk space (old clones, /tmp) and run make again" >&2; exit 1; fi
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[all,docs,dev]'
	@touch $(STAMP)

# Chromium for the web app's browser test (tests/test_app_browser.py skips without one): installed from
# Debian's packages when missing and when we may (root); never fatal.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "make browser: no Chromium installed (needs root and apt-get); the web app's browser test will skip"

# ruff (lint + format check) over the whole repository and mypy (the library; pyproject.toml [tool.mypy]).
LINT_PATHS := .
lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

# The site is built first so that tests/docs/test_site.py reads this build (it skips without one).
test: $(STAMP) browser lint
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir $(VENV)/site  # not --quiet: it hides the warnings that --strict should fail on
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/python examples/deepspg_full.py --out runs/demo

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

app: $(STAMP)
	$(BIN)/semprior app

# The home page's before/after gallery from the default shipped model (needs ../shared/data); rerun it
# after replacing the shipped weights: tests/docs/test_gallery.py checks the sha256 it records.
gallery: $(STAMP)
	$(BIN)/python tools/make_thumbnails.py

# The core dependency floors of pyproject.toml: a fresh venv (python3.X at the requires-python floor) with exactly
# those versions runs the core tests; writes benchmarks/results/floors.{json,md}. Minutes; needs PyPI. Not in `test`.
test-floors: $(STAMP)
	$(BIN)/python tools/check_floors.py

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_attention.py

clean:
	rm -rf $(VENV) site runs .pytest_cache
