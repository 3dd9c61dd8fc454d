# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench soak lint typecheck check kcat clean image compose-test

$(STAMP): pyproject.toml
	@echo "==> installing Collectors into $(VENV) (once)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

## demo: start Kafka, the reference destination and a worker; publish sample predictions; show the funnel
demo: $(STAMP)
	$(BIN)/collectors demo

## test: the whole suite, against a real Kafka broker the tests start themselves
test: $(STAMP) kcat
	$(BIN)/pytest -q -p no:cacheprovider

## kcat: the non-Python producer the end-to-end test uses (Debian package)
kcat:
	@command -v kcat >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq kcat >/dev/null; \
	  else echo "kcat is missing: run 'sudo apt-get install kcat'"; exit 1; fi; }

## bench: throughput of the pipeline against raw aiokafka and a naive Faust agent; the tap's added latency;
## posting with a model node
bench: $(STAMP)
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.tap
	$(BIN)/python -m bench.models

## image: the collectors and Kafka images, built from Debian packages and a wheelhouse (no registry needed)
image: $(STAMP)
	PYTHON=$(BIN)/python deploy/images.sh

## compose-test: the container test alone (builds the images, runs the stack in Docker)
compose-test: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider -m container tests/deploy

## soak: one worker under steady load (RATE events/s for MINUTES minutes), sampled into .collectors/soak/
RATE ?= 1500
MINUTES ?= 60
soak: $(STAMP)
	$(BIN)/python -m bench.soak --rate $(RATE) --minutes $(MINUTES)

lint: $(STAMP)
	$(BIN)/ruff check streams schemas tests bench
	$(BIN)/ruff format --check streams schemas tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

clean:
	rm -rf $(VENV) .collectors
