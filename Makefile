# Two entry points (see README): `make demo` and `make test`.
# Each creates ./.venv with Python 3.11 and installs the project and its pinned
# dependencies into it; reinstalling happens only when pyproject.toml changes.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed
BIN := $(VENV)/bin

# The web app's end-to-end tests drive Debian's Chromium (no browser download).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup demo test bench-setup clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,ray,onnx,map,hf]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/anchoral demo

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver

test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest

# The peers (small-text, scikit-activeml) and the int8 ONNX encoder, for benchmarks/ only.
bench-setup: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,ray,bench,onnx,map,hf]'

clean:
	rm -rf $(VENV)
