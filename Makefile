# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1

.PHONY: run test install env migrate worker beat lint bench clean

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
	$(PY) manage.py createcachetable

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

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
