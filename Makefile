# The two commands of the README:
#   make reproduce   set up .venv if needed, then run the default reproduction (profile cpu) into figures/
#   make test        set up .venv if needed, then run every check and test
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= cpu
# The data root: $MTL_META_DATA when set; else ../shared/data when a clone sits beside a shared data
# folder (as on the project's machines); else the library default, ~/data.
ifeq ($(MTL_META_DATA),)
ifneq ($(wildcard ../shared/data/omniglot),)
export MTL_META_DATA := $(abspath ../shared/data)
endif
endif

.PHONY: reproduce test smoke env export clean-nbs readme lock check-sync check-clean check-outputs test-nbs test-py bench outputs docs

reproduce: $(STAMP)
	$(BIN)/mtl-meta reproduce --profile $(PROFILE) --out figures

test: $(STAMP) check-sync check-clean check-outputs test-nbs test-py

env: $(STAMP)

# The environment: created when missing, reinstalled only when what it depends on changed.
$(STAMP): settings.ini setup.py requirements-lock.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade "pip>=24,<26"
	$(BIN)/python -m pip install -q --disable-pip-version-check -c requirements-lock.txt -e ".[dev]" \
		2> >(grep -v "^WARNING: Location" >&2)
	@touch $@

check-sync: $(STAMP)
	$(BIN)/python tools/check_export.py
	$(BIN)/python tools/make_readme.py --check

check-clean: $(STAMP)
	$(BIN)/python tools/check_notebooks.py

# The library notebooks' stored outputs were made from their current code (else: make outputs).
check-outputs: $(STAMP)
	$(BIN)/python tools/nb_outputs.py check

# Execute the library notebooks headless and store their outputs (a few minutes on 2 cores).
outputs: $(STAMP)
	$(BIN)/python tools/nb_outputs.py run

# The site, built offline from the notebooks and figures/ into _build/site (open index.html).
docs: $(STAMP)
	$(BIN)/python tools/build_docs.py --out _build/site

test-nbs: $(STAMP)
	$(BIN)/nbdev_test --n_workers 2 --timing

# The tests on TEST_WORKERS processes (pytest-xdist; 0 runs them in this one). The expensive shared fixtures (the
# wheel, the smoke reproduction, the docs site, two module reproductions) are built once for all workers, under a
# lock in the folder they share (tests/conftest.py, built_once); `--dist loadgroup` sends the tests that use one of
# them to the worker that builds it, so the other never waits on the lock (conftest.py, SHARED_FIXTURES).
TEST_WORKERS ?= 2
test-py: $(STAMP)
	$(BIN)/python -m pytest tests -n $(TEST_WORKERS) --dist loadgroup --durations=30

smoke: $(STAMP)
	$(BIN)/mtl-meta reproduce --profile smoke --out runs/smoke

export: $(STAMP)
	$(BIN)/nbdev_export

clean-nbs: $(STAMP)
	$(BIN)/python tools/check_notebooks.py --fix

readme: $(STAMP)
	$(BIN)/python tools/make_readme.py

# Re-pin every package of the environment after a deliberate upgrade (commit the result).
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v "^mtl-meta" > requirements-lock.txt

bench: $(STAMP)
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done
