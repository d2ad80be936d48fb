# The two commands: `make run` (everything on one laptop) and `make test` (the whole suite).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# Django 6 needs Python >= 3.12: take the first interpreter that is new enough (pyenv's too).
PYTHON ?= $(shell for c in python3.13 python3.12 python3 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.1[2-9]*/bin/python3 2>/dev/null); do \
	$$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && { echo $$c; break; }; done)

.PHONY: run test install lint format worker clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "make: Python 3.12 or newer is needed (Django 6) and none was found" >&2; exit 1; }
	@test -x $(PY) || { echo "Creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "Installing requirements into $(VENV) (first time: a few minutes)"
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt 2>&1 | grep -v "is ignored: it is neither" || true
	@$(PY) -c "import django, celery, pyarrow" || { echo "make: installing requirements failed" >&2; exit 1; }
	@touch $@

install: $(VENV)/.installed

run: install
	@$(PY) manage.py migrate --noinput -v 0
	@$(PY) manage.py load_demo
	@echo "Starting the web server, beat and the control, io and predict workers (Procfile); the address and login follow."
	@PATH="$(CURDIR)/$(VENV)/bin:$$PATH" PYTHONUNBUFFERED=1 HOST=$(HOST) PORT=$(PORT) exec $(VENV)/bin/honcho start -f Procfile

test: install
	@$(VENV)/bin/ruff check .
	@$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

worker: install
	$(VENV)/bin/celery -A mlplatform worker -l info -Q $$($(PY) manage.py worker_queues)

clean:
	rm -rf $(VENV) var
