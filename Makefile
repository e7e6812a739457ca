# One command for everything a newcomer needs: `make test` creates .venv, installs the
# course package with its test extra, and runs the whole test suite (slow tests included).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: install test test-fast release check-release demo hub-demo grade report bench bench-sliders clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,hub,dask]"
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

# Build release/ from source_notebooks/ with nbgrader, verify it and validate every notebook.
release: install
	$(VENV)/bin/nn-course build

# Fail if release/ is not what a fresh build gives (hand edits, a forgotten rebuild, a leak).
check-release: install
	$(VENV)/bin/nn-course build --check

# The instructor's pipeline on a synthetic class of 40 students, offline, in demo-class/:
# build, grade (parallel, sandboxed, re-checked), feedback, class report, expectations checked.
demo: install
	$(VENV)/bin/nn-course demo --out demo-class

# The course on JupyterHub at http://127.0.0.1:8000 (as root): an instructor and three demo
# students (Unix users), notebook 1 released; Ctrl-C stops it and removes what it created.
hub-demo: install
	$(VENV)/bin/nn-course hub demo

# Grade a folder laid out like nbgrader's submitted/ (or an LMS zip) into course/gradebook.db:
#   make grade SUBMISSIONS=path/to/submitted
SUBMISSIONS ?= course/submitted
grade: install
	$(VENV)/bin/nn-course grade $(SUBMISSIONS)

# Grades CSV, feedback HTML and the class report of what course/ has graded (course/report/).
report: install
	$(VENV)/bin/nn-course report

$(VENV)/.bench-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[test,hub,dask,bench]"
	touch $@

bench: $(VENV)/.bench-installed
	$(PY) bench/bench_training.py
	$(PY) bench/bench_gradcheck.py
	$(PY) bench/bench_grading.py

# Slider response in the browser (needs Debian's chromium), for docs/benchmarks.md.
bench-sliders: install
	$(PY) bench/bench_sliders.py

clean:
	rm -rf $(VENV) build *.egg-info demo-class
