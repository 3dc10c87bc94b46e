# The two commands: `make run` (set up and start the gateway) and `make test` (the suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: run test test-sqlite test-postgres lint bench faults translations migrations lock clean

# Every install takes the versions pinned in constraints.txt, so a new machine runs what CI
# tested (babel's CLDR data, say, changes what citizens see). `make lock` moves them.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[embedded,test]'
	@rm -f $(VENV)/.installed-* && touch $@

## Start the gateway on embedded defaults (SQLite in var/, embedded Redis, simulator SMS).
run: $(STAMP)
	$(BIN)/python server.py

## The whole suite: lint and types, then the tests on SQLite, then on PostgreSQL when
## TEST_POSTGRES_URL names a server (a scratch database is created there and dropped).
test: $(STAMP) lint test-sqlite
	@if [ -n "$$TEST_POSTGRES_URL" ]; then $(MAKE) --no-print-directory test-postgres; \
	else echo "TEST_POSTGRES_URL is not set: PostgreSQL run skipped"; fi

# Two test processes (pytest-xdist): the tests wait on sockets and subprocesses about half
# the time, so two share a 2-CPU machine well. TEST_WORKERS=0 runs them in one process.
TEST_WORKERS ?= 2

test-sqlite: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS)

test-postgres: $(STAMP)
	SAMPARK_TEST_DATABASE=postgres $(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy gateway ussd_menus server.py
	$(BIN)/mypy bench

## Benchmarks (bench/): each figure next to its ceiling measured in the same run, then one
## table against the targets. DATABASE_URL and REDIS_URL point them at PostgreSQL and a Redis.
bench: $(STAMP)
	$(BIN)/python bench/run.py

## Faults under traffic (bench/faults.py): Redis restarted empty, the worker killed mid-send,
## the provider losing answers; each part its own process, on a scratch PostgreSQL database
## (DATABASE_URL, else TEST_POSTGRES_URL, names the server). Prints messages, delivered,
## lost and duplicated for each.
faults: $(STAMP)
	$(BIN)/python bench/faults.py

## Extract citizen-facing text, update every language's catalog, compile; the same for the
## staff console's words (domain console: Hindi and English, read from the .po at start-up).
## A file whose messages did not change is left alone (no new POT-Creation-Date, no rewrite),
## so the diff a translator reviews is only what changed (docs/translating.md).
translations: $(STAMP)
	$(BIN)/pybabel -q extract -F babel.cfg -k N_ -k t -k gettext:2 -k _t:2 --no-location \
		--sort-output --project Sampark -o locales/messages.pot.new .
	$(BIN)/pybabel -q extract -F babel-console.cfg --no-default-keywords -k _ -k C_ --no-location \
		--sort-output --project Sampark -o locales/console.pot.new .
	@for pot in messages console; do \
		if [ -f locales/$$pot.pot ] && [ "$$(grep -v '^"POT-Creation-Date' locales/$$pot.pot.new)" \
			= "$$(grep -v '^"POT-Creation-Date' locales/$$pot.pot)" ]; then \
			rm locales/$$pot.pot.new; echo "locales/$$pot.pot: unchanged"; \
		else mv locales/$$pot.pot.new locales/$$pot.pot; echo "locales/$$pot.pot: updated"; fi; \
	done
	@for po in locales/*/LC_MESSAGES/messages.po locales/*/LC_MESSAGES/console.po; do \
		domain=$$(basename $$po .po); lang=$$(basename $$(dirname $$(dirname $$po))); \
		if $(BIN)/pybabel -q update -i locales/$$domain.pot -d locales -D $$domain -l $$lang \
			--no-fuzzy-matching --ignore-pot-creation-date --check 2>/dev/null; then \
			echo "$$po: unchanged"; \
		else $(BIN)/pybabel -q update -i locales/$$domain.pot -d locales -D $$domain -l $$lang \
			--no-fuzzy-matching --ignore-pot-creation-date && echo "$$po: updated"; fi; \
	done
	$(BIN)/pybabel compile -d locales -D messages --statistics

## After changing gateway/storage/models.py: write the next schema migration.
migrations: $(STAMP)
	$(BIN)/tortoise -c gateway.storage.db.MIGRATIONS_TORTOISE_ORM makemigrations

## Re-resolve every dependency to the newest release pyproject.toml allows, in a scratch
## venv, and pin the result in constraints.txt (then run `make test` and commit both).
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet '.[embedded,test]'
	{ echo "# Pinned by \`make lock\` on $$(date -u +%Y-%m-%d) with $$(.venv-lock/bin/python -V);"; \
	  echo "# every install (make run, make test, CI) takes these versions."; \
	  .venv-lock/bin/python -m pip freeze --exclude-editable | grep -v -i '^sampark' | LC_ALL=C sort -f; \
	} > constraints.txt
	rm -rf .venv-lock build
	@echo "constraints.txt written: review the diff, run make test, commit"

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
