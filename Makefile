# Formloom: `make run` serves the sales pack with demo data; `make test` runs every check.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
DB     ?= sqlite:///formloom.db
PORT   ?= 8000

NODE_STAMP := node_modules/.installed-$(shell cksum package-lock.json | cut -d' ' -f1)

.PHONY: run test lint typecheck pytest bench clean assets

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Formloom needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

# Front-end packages (htmx, Alpine.js, ECharts) from the npm registry, exactly as locked.
$(NODE_STAMP): package.json package-lock.json
	@command -v npm > /dev/null || { echo "Formloom's web pages need Node.js and npm (https://nodejs.org)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	rm -f node_modules/.installed-* && touch $(NODE_STAMP)

assets: $(NODE_STAMP)

run: $(STAMP) $(NODE_STAMP)
	@# a dev database follows the pack: publish applies safe changes and refuses lossy ones
	$(BIN)/formloom publish definitions/sales --db $(DB) --author make-run > /dev/null || \
		$(BIN)/formloom plan definitions/sales --db $(DB)
	$(BIN)/formloom serve definitions/sales --db $(DB) --port $(PORT) --demo --worker

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check builder runtime tests bench

typecheck: $(STAMP)
	$(BIN)/mypy builder runtime

pytest: $(STAMP) $(NODE_STAMP)
	$(BIN)/pytest -n 3 --dist loadfile -q

bench: $(STAMP)
	$(BIN)/python bench/api_vs_baseline.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache formloom.db* files test-artifacts
