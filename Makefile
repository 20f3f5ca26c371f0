# Two commands on a fresh machine with Python 3.11:  `make demo`  and  `make test`.
# Both create .venv and install what they need.  The CPU build of torch is installed first so
# that pip never pulls the multi-GB CUDA build; on a GPU machine run `pip install -e .` yourself
# (or `make TORCH_SPEC=torch venv`) to get CUDA torch.
# Building the package warns of nothing (its data files are declared in pyproject.toml); the one
# warning filtered below is the notice setuptools prints on every editable install of a flat layout.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	PYTHONWARNINGS="ignore:Editable installation:UserWarning" $(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

# Main job on a small default: a tiny balls4 dataset (generated, described, verified, drawn), a quick R-NEM run on
# it, then the shipped mini-tier R-NEM scored on fresh mini-balls4 sequences beside the floors (grids, copies,
# the frozen frame) on the same sequences.
demo: $(STAMP)
	RNEM_BENCH_DATA=$${RNEM_BENCH_DATA:-$(CURDIR)/data} $(BIN)/rnem-bench demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) data runs
