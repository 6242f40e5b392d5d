# Thin aliases; everything real lives in the `autograder` package and its CLI.
# A system Python (readable by every user) lets the sandbox drop privileges.
PYTHON ?= $(shell test -x /usr/bin/python3.11 && echo /usr/bin/python3.11 || echo python3)
VENV := .venv
PY := $(VENV)/bin/python
AG := $(PY) -m autograder

.PHONY: install demo test lint type validate bench bench-kit templates clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

demo: install
	$(PY) examples/demo.py

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check autograder tests bench
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/hadolint grading_images/*.Dockerfile   # the GPU image is built only where a GPU is lent

type: install
	$(VENV)/bin/mypy

validate: install
	$(AG) validate

templates: install
	$(AG) template

bench: install
	$(PY) bench/bench_grading.py

# A1's student kit in a fresh venv: install seconds and size (target: < 30 s, < 300 MB).
bench-kit: install
	$(PY) bench/bench_student_kit.py a1

clean:
	rm -rf $(VENV) demo-results .pytest_cache .mypy_cache .ruff_cache
