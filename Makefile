# Two commands on a fresh machine with only Python 3.11:  make demo  ·  make test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
OUT    ?= demo-output
SCALE  ?= 1000000
# the suite runs in this many processes (pytest-xdist); CI's machine has 2 cores, and a third process
# computes while the tests marked `waits` (a served deployment's schedule) wait
TEST_WORKERS ?= 3

.PHONY: demo test bench install lock clean

# Dependencies are installed once per change of pyproject.toml or constraints.txt, at the versions
# constraints.txt names (a registry's newer release cannot change a demo or CI overnight); the
# package itself is re-installed (plain, non-editable) every time so that tests run against what
# users get from `pip install .`.
$(VENV)/.deps: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt ".[test]"
	touch $@

install: $(VENV)/.deps
	$(BIN)/pip install --quiet --no-deps --force-reinstall .

demo: install
	$(BIN)/fundwatch demo --out $(OUT)

test: install
	$(BIN)/pytest -n $(TEST_WORKERS)

bench: install
	$(BIN)/python -m pipelines.bench --persons $(SCALE) --out reports/bench.json

# A fresh resolution of pyproject.toml's ranges, written to constraints.txt (then run make test).
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet ".[test]"
	{ sed -n '/^#/p' constraints.txt; .venv-lock/bin/pip freeze --exclude-editable | grep -iv '^fundwatch'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) $(OUT) build *.egg-info
