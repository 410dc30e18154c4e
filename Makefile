# The two commands of a fresh machine: `make demo` (the main job, on the embedded digits data) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo demo-noisy study test test-slow bench lint clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --upgrade pip
	$(VENV)/bin/pip install -e '.[dev,tracking,cluster]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) launch/demo.py

demo-noisy: $(STAMP)
	$(PY) launch/demo.py --noisy

study: $(STAMP)  # the digits study: 3 past runs per setting, tuned frontiers, 10 seeds; clean, noisy, new model (about 3 hours on 2 cores, resumable)
	$(PY) launch/study.py

test: $(STAMP)
	$(PY) -m pytest tests

test-slow: $(STAMP)
	$(PY) -m pytest tests -m slow

bench: $(STAMP)
	$(PY) bench/throughput.py
	$(PY) bench/kd_step.py
	$(PY) bench/scoring.py
	$(PY) bench/adv_step.py
	$(PY) bench/baselines_step.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf runs results
