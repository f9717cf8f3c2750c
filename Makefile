# madoc-sensor: `make demo`, `make test`, `make bench`, `make fuzz`, `make mutate`,
# `make lint`, `make deb`.
# Each target creates .venv and installs the project on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench fuzz mutate lint pcaps clean deb

# The modules setup.py compiles with mypyc: a change to one rebuilds (tests/test_build.py).
COMPILED := $(shell sed -n 's/^    "\(sensor\/.*\.py\)",$$/\1/p' setup.py)

$(STAMP): setup.cfg pyproject.toml setup.py $(COMPILED)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/madoc-sensor demo

test: $(STAMP)
	$(BIN)/ruff check sensor tests pcaps
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python tests/bench/run_bench.py
	$(BIN)/python tests/bench/bench_app.py
	$(BIN)/python tests/bench/bench_flood.py
	$(BIN)/python tests/bench/bench_matcher.py
	$(BIN)/python tests/bench/bench_collector.py
	$(BIN)/python tests/bench/bench_hostile.py
	$(BIN)/python tests/bench/bench_report.py
	$(BIN)/python tests/bench/bench_national.py
	$(BIN)/python tests/bench/bench_live.py
	$(BIN)/python tests/bench/bench_conntrack.py

fuzz: $(STAMP)
	$(BIN)/python tests/fuzz/fuzz_packets.py --packets 10000000

# The mutation score of the modules whose mistakes cost most (docs/testing.md): hours,
# never part of `make test`. MODULES="sensor/core/decode/dns.py" scores only those; ARGS=--diffs shows the survivors.
mutate: $(STAMP)
	$(BIN)/pip install --quiet 'mutmut>=3.8,<4'
	$(BIN)/python tests/mutation/mutate.py $(ARGS) $(MODULES)

lint: $(STAMP)
	$(BIN)/ruff check sensor tests pcaps

pcaps: $(STAMP)
	$(BIN)/python pcaps/make_pcaps.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
	find . -name '*.so' -not -path './.venv/*' -print -delete     # mypyc's builds

# The Debian package (debian/): dist/madoc-sensor_VERSION_amd64.deb, built with
# Debian's python3 and the build dependencies debian/control names.
deb:
	dpkg-checkbuilddeps
	debian/rules clean
	debian/rules binary
