# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv first if needed.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.semprior-installed

.PHONY: venv test demo docs bench clean

venv: $(STAMP)

# torch/torchvision first (the pair that works on this machine), then everything under the pins.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[all,docs,dev]'
	@touch $(STAMP)

# The site is built first so that tests/docs/test_site.py reads this build (it skips without one).
test: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir $(VENV)/site  # not --quiet: it hides the warnings that --strict should fail on
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/python examples/deepspg_full.py --out runs/demo

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_attention.py

clean:
	rm -rf $(VENV) site runs .pytest_cache
