# The everyday commands. `make help` lists them; the logic lives in scripts/.

.DEFAULT_GOAL := help
.PHONY: help demo test lint

help: ## List the targets
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-6s %s\n", $$1, $$2}'

demo: ## Record the bundled demo shop (it fails on purpose), then show the failure
	@scripts/demo.sh

test: ## Run the tests on Python 3.11, 3.12 and 3.13 (PYTHONS="3.12" for one; ARGS="-k cli")
	@scripts/test.sh $(ARGS)

lint: ## ruff check + ruff format --check
	@scripts/lint.sh
