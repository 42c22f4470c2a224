# mmcourse: `make course` runs every notebook, `make test` runs the tests. Both set up what is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.mmcourse-ready
TUXPAINT_DIR := $(or $(MMCOURSE_TUXPAINT_DIR),/usr/share/tuxpaint/stamps)
APT_PACKAGES := ffmpeg espeak-ng tuxpaint-stamps-default
NBVAL := --nbval-lax --nbval-kernel-name=mmcourse --nbval-cell-timeout=900
# PyTorch's OpenMP threads spin while they wait; beside other busy processes that makes
# training many times slower. Passive waiting costs little when the machine is quiet.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: help setup system course test unit lab clean
.DEFAULT_GOAL := help

help:
	@echo "make course  set up, then run every notebook and write build/report.md"
	@echo "make test    set up, then run the unit tests and every notebook under nbval"
	@echo "make unit    unit tests only (quick)"
	@echo "make lab     open JupyterLab on the notebooks"
	@echo "make clean   remove build/ and the data caches (.cache/); keeps .venv"

setup: system $(READY)

# System packages: installed with apt when we are root or may sudo; otherwise say what to run.
system:
	@missing=""; \
	command -v ffmpeg >/dev/null || missing="$$missing ffmpeg"; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	[ -d "$(TUXPAINT_DIR)" ] || missing="$$missing tuxpaint-stamps-default"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	echo "Missing system packages:$$missing"; \
	if ! command -v apt-get >/dev/null; then \
	  echo "No apt-get here: install them with your package manager (see README, 'Other systems')."; exit 1; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif sudo -n true 2>/dev/null; then sudo="sudo"; \
	else echo "Run:  sudo apt-get update && sudo apt-get install -y $(APT_PACKAGES)"; exit 1; fi; \
	$$sudo apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $(APT_PACKAGES)

# The virtual environment is rebuilt only when pyproject.toml changes.
$(READY): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { \
	  echo "Could not create $(VENV): on Debian/Ubuntu run  sudo apt-get install python3-venv"; exit 1; }
	$(PY) -m pip install --quiet --upgrade "pip>=23"
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name mmcourse --display-name "Python (mmcourse)" \
	  --env OMP_WAIT_POLICY PASSIVE >/dev/null
	@touch $@
	@echo "Environment ready in $(VENV)"

course: setup
	$(PY) -m mmcourse.course

test: setup
	$(PY) -m pytest tests notebooks $(NBVAL)

unit: setup
	$(PY) -m pytest tests

lab: setup
	$(VENV)/bin/jupyter lab notebooks

clean:
	rm -rf build .cache
