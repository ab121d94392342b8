# Two commands: `make lab` (set up, then open the course) and `make test`.
# Each target sets up .venv on first use; a second run skips the install
# (the stamp file depends on requirements.txt, requirements-nodeps.txt and pyproject.toml).

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
PYTEST_NB := --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: setup lab test unit notebooks-test bench bench-peer notebooks slides student clean

setup: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml | $(PY)
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install --no-deps -e .
	touch $(STAMP)

# The course's JupyterLab settings (lab/overrides.json: widget state saved with the notebook, no
# news pop-up, every cell rendered so the deck can page through them) go where JupyterLab reads
# its defaults, inside the venv; a student's own settings still win.
lab: setup
	install -D -m 644 lab/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

# ruff; then one pytest run on two workers, one torch thread each (two threads each would fight
# over two cores): the unit tests, every notebook under nbval, and every notebook's student edition
# under other CPU kernels (--nbval-portable: SSE4.1 oneDNN, non-vectorized ATen, NumPy's baseline
# loops; conftest.py), longest first; then the browser tests, alone. Each run ends with pytest's
# summary line.
test: setup
	$(VENV)/bin/ruff check .
	OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder \
	  $(PYTEST_NB) --nbval-portable -m "not browser" tests notebooks
	$(PY) -m pytest -m browser tests

unit: setup
	OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder tests -m "not browser"

notebooks-test: setup
	OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder \
	  $(PYTEST_NB) --nbval-portable notebooks

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

# The student edition to hand out: every notebook without its solution cells, the exercise stubs'
# outputs cleared, under student/ (git-ignored). Re-run after changing a notebook.
student: setup
	$(PY) -m course_lib.exercises.editions student student

# Static reveal.js decks of every notebook (stored outputs, explorers in their saved state) under
# slides/, opening offline: nbconvert's reveal template loads reveal.js 4.0.2 through require.js,
# plus jQuery, MathJax 2 and the widget renderer, all unpacked from npm once into slides/lib/
# instead of its CDN defaults (lab/slides_config.py, shared with lab/fit_slides.py). No notebook
# draws a mermaid diagram, so its CDN module is left out; the "white" theme's font ships with
# reveal.js (the default "simple" imports Google Fonts). After editing a notebook, run
# `.venv/bin/python lab/fit_slides.py notebooks/NN_name.ipynb` so that its slides fit the screen.
SLIDES_JS := reveal.js@4.0.2 requirejs@2.1.10 jquery@2.2.4 mathjax@2.7.7 @jupyter-widgets/html-manager@1.0.15

slides: setup
	@if [ "$$(cat slides/lib/.installed 2>/dev/null)" != "$(SLIDES_JS)" ]; then \
	  rm -rf slides/lib && mkdir -p slides/lib && cd slides/lib && \
	  for package in $(SLIDES_JS); do \
	    name=$${package%@*}; name=$${name##*/}; \
	    tarball=$$(npm pack --silent "$$package") && mkdir -p "$$name" && \
	    tar -xzf "$$tarball" -C "$$name" --strip-components=1 && rm "$$tarball" || exit 1; \
	  done && echo "$(SLIDES_JS)" > .installed; \
	fi
	$(VENV)/bin/jupyter nbconvert --config lab/slides_config.py --output-dir slides $(NOTEBOOKS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
