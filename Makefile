# Two commands for a new user: `make run` and `make test`. Everything else is here for them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.tts-nb-installed
KERNEL := tts-nb
OUT    ?= build/notebooks

.PHONY: run test lint install clean-notebooks clean bench docs

install: $(STAMP)

# Idempotent: re-runs only when pyproject.toml changes (or the venv is missing).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@# Keep any torch already in the venv. Without one, prefer a wheel from a local wheelhouse
	@# (pip's find-links), else the registry's default build, which on Linux brings several GB of CUDA
	@# libraries: say so first (and how to get the CPU build), but go on, as an unattended install must.
	@$(BIN)/python -c "import torch" 2>/dev/null || \
	  $(BIN)/python -m pip install -q --no-index --no-deps torch 2>/dev/null || \
	  { echo "installing torch from PyPI: on Linux its default build brings CUDA libraries of several GB."; \
	    echo "No GPU? Stop (Ctrl-C), run '$(BIN)/pip install torch --index-url https://download.pytorch.org/whl/cpu'"; \
	    echo "(about 200 MB), then make again: the installed torch is kept."; \
	    $(BIN)/python -m pip install -q torch; }
	$(BIN)/python -m pip install -q -e ".[dev,dia]"
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (tts-nb)" >/dev/null
	@# Notebooks are committed without outputs: a git clean filter strips them on `git add`, so a notebook
	@# run or saved in JupyterLab does not show as changed (.gitattributes names the filter).
	@git rev-parse --git-dir >/dev/null 2>&1 && git config filter.tts-nb-strip.clean "$(CURDIR)/$(BIN)/tts-nb strip -" \
	  && git config filter.tts-nb-strip.smudge cat || true
	@touch $@
	@echo "installed into $(VENV) (kernel '$(KERNEL)')"

run: $(STAMP)
	$(BIN)/tts-nb run --out $(OUT) --kernel $(KERNEL)

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) lint
	$(BIN)/python -m pytest

# A static HTML site of the executed notebooks (plots embedded, no network needed) for a workshop to hand out:
# build/site/index.html. Reuses the executed copies in $(OUT) that are newer than their notebook (from `make run`);
# runs only the missing, older or failed ones.
docs: $(STAMP)
	$(BIN)/tts-nb docs --from $(OUT) --out build/site --kernel $(KERNEL)

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e ".[dev,bench]"
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

# Notebooks are committed without outputs; executed copies are build artefacts.
clean-notebooks: $(STAMP)
	$(BIN)/tts-nb strip notebooks/*.ipynb

clean:
	rm -rf build .pytest_cache .ruff_cache
