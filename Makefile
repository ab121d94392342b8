# Two commands: `make lab` (set up, then open the course) and `make test`.
# Each target sets up .venv on first use; a second run skips the install
# (the stamp file depends on requirements.txt and pyproject.toml).

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
PYTEST_NB := --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: setup lab test unit notebooks-test bench bench-peer notebooks slides clean

setup: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt pyproject.toml | $(PY)
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	touch $(STAMP)

lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

# ruff, then one pytest run: unit tests, every notebook under nbval, every notebook again under
# other CPU kernels (--nbval-portable: SSE4.1 oneDNN, non-vectorized ATen, NumPy's baseline
# loops), then the browser test (conftest.py orders them). It ends with pytest's summary line.
test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest $(PYTEST_NB) --nbval-portable tests notebooks

unit: setup
	$(PY) -m pytest tests -m "not browser"

notebooks-test: setup
	$(PY) -m pytest $(PYTEST_NB) --nbval-portable notebooks

bench: setup
	$(PY) benchmarks/run_all.py $(BENCH)

# Our Faster R-CNN against torchvision's, trained the same way (takes ~25 minutes).
bench-peer: setup
	$(PY) benchmarks/peer_faster_rcnn.py

# Re-execute every notebook in place after a library change (outputs are stored).
notebooks: setup
	for nb in $(NOTEBOOKS); do \
	  $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=600 "$$nb" || exit 1; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
