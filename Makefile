# `make demo` and `make test` build .venv themselves (torch's CPU wheel first, then the rest
# constrained to it so pip never pulls CUDA packages).
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.psilearn-installed
export OMP_NUM_THREADS ?= 2

.PHONY: demo test test-slow install clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[all]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/psilearn demo --out demo-output --overwrite

test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

clean:
	rm -rf $(VENV) demo-output
