# One entry point for users and CI. Needs only python3 (3.10+) and pip; everything else goes in .venv-tools.
PYTHON ?= python3
TOOLS := .venv-tools
export PYENV_VERSION ?= 3.11.7:3.12.1:3.13.0:3.10.13

.PHONY: help test test-all test-quick lint docs bench demo clean

help:
	@echo "make demo        run the example blog API under gunicorn, load-test it, show its metrics"
	@echo "make test        the tox matrix: unit tests on every Python x Django, server tests on the oldest and newest, lint, docs, packaging"
	@echo "make test-all    the same with every test in every environment (what GitHub Actions runs)"
	@echo "make test-quick  the tests on the current Python only"
	@echo "make bench       the benchmarks (see docs/benchmarks.md), then the docs' tables and charts from them"
	@echo "make docs        the HTML documentation (its last line says where it is)"

$(TOOLS)/bin/tox:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet "tox>=4.22" "tox-uv>=1.11"

test: $(TOOLS)/bin/tox
	$(TOOLS)/bin/tox run

test-all: $(TOOLS)/bin/tox
	PRODKIT_FULL_MATRIX=1 $(TOOLS)/bin/tox run

test-quick: $(TOOLS)/bin/tox
	$(TOOLS)/bin/tox run -e py311-django52

lint: $(TOOLS)/bin/tox
	$(TOOLS)/bin/tox run -e lint

# The site is built in the docs env's temporary directory (tox.ini's DOCS_HTML); the last line says where.
DOCS_HTML := .tox/docs/tmp/html/index.html

docs: $(TOOLS)/bin/tox
	$(TOOLS)/bin/tox run -e docs
	@echo "The HTML documentation is in $(CURDIR)/$(DOCS_HTML)"

# The example under gunicorn (4 workers), load-tested with manage.py loadtest, its metrics checked; see
# docs/example-project.md. Installs into .venv-demo on the first run.
demo:
	$(PYTHON) example_project/demo.py

# The benchmarks of docs/benchmarks.md, in .venv-bench (the library with every extra, the peer libraries
# and locust). metrics_e2e.py, kit_e2e.py and loadgen.py also need Debian's wrk and nginx-light. Each script
# writes benchmarks/results/<script>.json; render_docs.py then fills the docs' tables and charts from those files.
BENCH := .venv-bench
BENCH_SCRIPTS := overhead metrics_e2e metrics_longrun loadgen cloudwatch_latency health db logline kit_e2e otlp_export

$(BENCH)/bin/python:
	$(PYTHON) -m venv $(BENCH)
	$(BENCH)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH)/bin/python -m pip install --quiet -e ".[aws,xray,otel,loadtest,orjson]" --group bench

bench: $(BENCH)/bin/python
	@for script in $(BENCH_SCRIPTS); do \
		echo "== benchmarks/$$script.py"; \
		$(BENCH)/bin/python benchmarks/$$script.py || exit 1; \
	done
	$(BENCH)/bin/python benchmarks/render_docs.py

clean:
	rm -rf $(TOOLS) .tox build dist docs/_build .venv-demo .venv-bench demo-reports
