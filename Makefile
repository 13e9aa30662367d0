# Two commands set everything up on a fresh machine with Python 3.11:
#   make run    creates .venv if missing, installs requirements.txt, runs experiments.py (its default budget,
#               one run per core: its default --jobs)
#   make test   creates .venv if missing, installs requirements.txt, runs pytest
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed-requirements
PYTEST_ARGS ?=

.PHONY: run quick test bench clean-venv

$(STAMP): requirements.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -r requirements.txt
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/python experiments.py

quick: $(STAMP)
	$(VENV)/bin/python experiments.py --quick

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/numpy_vs_torch.py

clean-venv:
	rm -rf $(VENV)
