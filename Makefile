# GOBO accelerator generator. Every target bootstraps its own pinned environment in .venv.
#   make          main job: quantize the real MiniLM weights, emit the RTL, write build/reports/
#   make test     all tests (golden, Amaranth simulator, cocotb on Verilator, lint)
#   make verilog  one Verilog file per preset in build/verilog/, linted by Verilator
#   make synth    area (OSU 0.18 um), transistors, ECP5 LUT/FF/DSP and Fmax in build/reports/

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
JOBS   ?= 2

.PHONY: all report verilog test synth clean distclean

all: report verilog

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e .
	touch $@

report: $(STAMP)
	$(PY) scripts/bench_quantize.py --out build/reports

verilog: $(STAMP)
	$(PY) -m hw.cli --out build/verilog --lint

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) tests

synth: $(STAMP)
	$(PY) -m synth --out build/reports

clean:
	rm -rf build sim_build .pytest_cache

distclean: clean
	rm -rf $(VENV)
