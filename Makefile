# The two commands of a fresh machine: `make demo` (the main job, on the embedded digits data) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

FASHION_DIR := $(or $(PASTRUN_FASHION_MNIST),/usr/share/datasets/fashion-mnist)
FASHION_FILES := train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz

.PHONY: demo demo-noisy study study-fashion test test-slow bench lint clean fashion-mnist

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --upgrade pip
	$(VENV)/bin/pip install -e '.[dev,tracking,cluster]'
	touch $(STAMP)

# Fashion-MNIST's four files from Debian's package where they are missing (as root, or with sudo -n); nothing else is
# downloaded from anywhere. Without apt-get: one line saying what to put where.
fashion-mnist:
	@for f in $(FASHION_FILES); do [ -f "$(FASHION_DIR)/$$f" ] || missing=1; done; \
	[ -z "$$missing" ] && exit 0; \
	if ! command -v apt-get >/dev/null; then \
	  echo "Fashion-MNIST is missing from $(FASHION_DIR): install Debian's package dataset-fashion-mnist, or put $(FASHION_FILES) in one folder and set PASTRUN_FASHION_MNIST (or data.path) to it" >&2; exit 1; \
	fi; \
	sudo=; [ "$$(id -u)" = 0 ] || sudo="sudo -n"; \
	$$sudo apt-get install -y dataset-fashion-mnist || { $$sudo apt-get update && $$sudo apt-get install -y dataset-fashion-mnist; }

demo: $(STAMP) fashion-mnist
	$(PY) launch/demo.py

demo-noisy: $(STAMP) fashion-mnist
	$(PY) launch/demo.py --noisy

# The fair studies: every recipe tuned like the frontier, a frontier to twice the past runs, one past run per seed, 10
# seeds; clean (with new data), noisy labels, new model. Each about 6 hours on 2 idle cores, resumable: run it again.
study: $(STAMP) fashion-mnist  # on digits
	$(PY) launch/study.py --data digits

study-fashion: $(STAMP) fashion-mnist  # on Fashion-MNIST
	$(PY) launch/study.py --data fashion_mnist

test: $(STAMP) fashion-mnist
	$(PY) -m pytest tests

test-slow: $(STAMP) fashion-mnist
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
