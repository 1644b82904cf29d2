# Guildhall: `make run` sets up and runs the product; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# One stamp per set: `make run` installs the runtime set only, `make test` adds the test tools.
RUN_STAMP := $(VENV)/.installed-run-$(shell cat requirements.txt | cksum | cut -d' ' -f1)
TEST_STAMP := $(VENV)/.installed-test-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup setup-test run test migrate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@rm -f $(VENV)/.installed-run-*
	@touch $(RUN_STAMP)

$(TEST_STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@rm -f $(VENV)/.installed-test-*
	@touch $(TEST_STAMP)

setup: $(RUN_STAMP)

setup-test: $(TEST_STAMP)

migrate: setup
	$(BIN)/python manage.py backup_before_migrate
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py setup_schedules
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0

run: migrate
	@echo ""
	@echo "Guildhall is starting at http://$(HOST):$(PORT)/admin/"
	@echo "Make an admin user (once):  $(BIN)/python manage.py createsuperuser"
	@if [ -z "$$DISCORD_TOKEN" ]; then echo "Bot skipped: DISCORD_TOKEN is not set (web and worker run without it)."; fi
	@$(BIN)/python manage.py litestream_config --check || echo "Litestream skipped: LITESTREAM_REPLICA_URL is not set (or the database is PostgreSQL)."
	@echo "Press Ctrl-C to stop."
	@echo ""
	@PATH="$(CURDIR)/$(BIN):$$PATH" HOST=$(HOST) PORT=$(PORT) exec $(BIN)/honcho start \
		$$( [ -n "$$DISCORD_TOKEN" ] && echo "web worker bot" || echo "web worker" ) \
		$$( $(BIN)/python manage.py litestream_config --check && echo litestream )

test: setup-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
