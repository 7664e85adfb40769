# The two commands a newcomer needs: `make run` and `make test`; operators: `make prod` (README, "Production").
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1
ENV_FILE ?= .env

.PHONY: run test install env migrate worker beat lint bench clean prod secrets fault-test

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# A local .env with DEBUG on and fresh random secrets, made once; settings read it.
.env:
	$(PY) scripts/make_env.py > .env

env: install .env

migrate: env
	$(PY) manage.py migrate --noinput

run: migrate
	@echo ""
	@echo "  Sequrity Control on http://$(HOST):$(PORT)/  (dashboard; Control API under /control/)"
	@echo "  First admin:   $(PY) manage.py createsuperuser"
	@echo "  Or sign up at  http://$(HOST):$(PORT)/accounts/signup/"
	@echo ""
	$(VENV)/bin/uvicorn sequrity_site.asgi:application --host $(HOST) --port $(PORT) --workers $(WORKERS) \
		--http httptools --loop uvloop --h11-max-incomplete-event-size 131072 --no-access-log

test: env
	$(VENV)/bin/pytest $(PYTEST_ARGS)

worker: env
	$(VENV)/bin/celery -A sequrity_site worker --loglevel INFO

beat: env
	$(VENV)/bin/celery -A sequrity_site beat --loglevel INFO

# Production: a .env made with `scripts/make_env.py --production HOST` (or ENV_FILE=...), then migrate,
# collectstatic, the deployment checks, and every process of the Procfile (web, worker, beat) under honcho.
prod: install
	@test -f "$(ENV_FILE)" || { echo "No $(ENV_FILE): $(PY) scripts/make_env.py --production your.host > .env, then edit it"; exit 1; }
	ENV_FILE="$(ENV_FILE)" $(PY) manage.py migrate --noinput
	ENV_FILE="$(ENV_FILE)" $(PY) manage.py collectstatic --noinput -v 0
	ENV_FILE="$(ENV_FILE)" $(PY) manage.py check --deploy --fail-level ERROR
	mkdir -p var
	ENV_FILE="$(ENV_FILE)" PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/honcho -e "$(ENV_FILE)" -f Procfile start

# The fault test (README, "Nothing is lost"): the production processes under load, one fault at a time, on a
# database, RabbitMQ node and Redis of its own. FAULT_ARGS=--quick for the short form (CI).
fault-test: install
	$(PY) scripts/fault_test.py $(FAULT_ARGS)

# Fresh SECRET_KEY and FIELD_ENCRYPTION_KEY (needs no settings).
secrets: install
	@$(PY) scripts/make_env.py --secrets

# The checks CI runs before the tests (the same as .pre-commit-config.yaml): ruff's rules, ruff's format,
# the import boundaries (pyproject.toml, [tool.importlinter]) and the engines' types ([tool.mypy]).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
