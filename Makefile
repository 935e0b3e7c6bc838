# GOBO accelerator generator. Every target bootstraps its own pinned environment in .venv.
#   make          main job: quantize the real MiniLM weights, emit the RTL, write build/reports/
#   make test     all tests (golden, Amaranth simulator, cocotb on Verilator, lint)
#   make test-full  all 36 MiniLM encoder FC matrices through the tile RTL (not in CI)
#   make verilog  one Verilog file per preset in build/verilog/, linted by Verilator
#   make synth    area (OSU 0.18 um), transistors, ECP5 LUT/FF/DSP and Fmax in build/reports/

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
JOBS   ?= 2

.PHONY: all report verilog test test-full synth clean distclean

all: report verilog

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e .
	touch $@

report: $(STAMP)
	$(PY) scripts/bench_quantize.py --out build/reports

verilog: $(STAMP)
	$(PY) -m hw.cli --out build/verilog --lint
	$(PY) -m hw.cli --out build/verilog --lint --tile

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) tests

# Not in CI (about an hour): all 36 MiniLM encoder FC matrices through the tile RTL, 8 tokens.
test-full: $(STAMP)
	$(PY) scripts/simulate_all.py --out build/reports --tokens 8

synth: $(STAMP)
	$(PY) -m synth --out build/reports

clean:
	rm -rf build sim_build .pytest_cache

distclean: clean
	rm -rf $(VENV)
