# Two entry points on a fresh machine: `make up` (deploy a stack) and `make test` (the test suite).
# Everything else here is how they install what they need, once, into .venv and node_modules.

STACK ?= dev
VENV := .venv
PYTHON := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed-dev
NODE_STAMP := node_modules/.installed
MERMAID_JS := docs/assets/javascripts/mermaid.min.js

.PHONY: up destroy preview test install docs

# Deploy (or update) the stack: the Pulumi CLI creates .venv from requirements.txt by itself.
up:
	pulumi install
	pulumi stack select --create $(STACK)
	pulumi up --stack $(STACK)

preview:
	pulumi install
	pulumi preview --stack $(STACK) --diff

destroy:
	pulumi install
	pulumi destroy --stack $(STACK)

test: install
	$(PYTHON) -m pytest

install: $(PY_STAMP) $(NODE_STAMP) $(MERMAID_JS)

# Serve the documentation site on http://127.0.0.1:8000, rebuilt on every change; the reference
# pages are generated first (python -m infra.cli.reference).
docs: install
	$(PYTHON) -m infra.cli.reference
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8000

$(PY_STAMP): requirements.txt requirements-dev.txt requirements-docs.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# The site's diagrams draw without a network: Mermaid (pinned in package.json) is served with it.
$(MERMAID_JS): $(NODE_STAMP)
	mkdir -p $(@D)
	cp node_modules/mermaid/dist/mermaid.min.js $@
