# Two entry points on a fresh machine: `make up` (deploy a stack) and `make test` (the test suite).
# Everything else here is how they install what they need, once, into .venv and node_modules.

STACK ?= dev
VENV := .venv
PYTHON := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed-dev
NODE_STAMP := node_modules/.installed

.PHONY: up destroy preview test install

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

install: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): requirements.txt requirements-dev.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@
