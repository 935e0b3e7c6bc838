# GOBO accelerator generator. Every target bootstraps its own pinned environment in .venv.
#   make          main job: quantize the real MiniLM weights, emit the RTL, write build/reports/
#   make test     ruff, the formal proofs, then all tests (golden, Amaranth simulator, cocotb on
#                 Verilator, lint)
#   make formal   SymbiYosys proofs of the components' properties (docs/verification.md, ~1 min)
#   make test-full  300 real sentences through every MiniLM FC layer on the bit-exact model,
#                   all 36 MiniLM encoder FC matrices through the tile RTL, and a real sentence
#                   through all 36 on the RTL with the host in between (not in CI)
#   make verilog  one Verilog file per preset in build/verilog/, linted by Verilator
#   make bitstream  the tile on an FPGA board (BOARD=ulx3s-85f, the default): .bit/.svf,
#                 utilization and timing in build/board/<board>/ (docs/board.md, 5-8 CPU minutes)
#   make synth    area (OSU 0.18 um), transistors, ECP5 LUT/FF/DSP and Fmax in build/reports/
#                 (SWEEP=1: the GOBO design-space sweep, OSU flow only)
#   make latency  per-inference latency of every encoder FC layer, GOBO vs the MAC tiles, under each
#                 memory preset, at the Fmax of `make synth` (docs/latency.md; about 5 minutes)
#   make efficiency  energy per inference (SRAM + off-chip; logic when given) and tile area with
#                 memories in build/reports/energy.* (docs/efficiency.md, about 2-3 minutes)
#   make power    dynamic and leakage power of the seven comparison tiles (OSU netlists, OpenSTA)
#                 with the activity of a real MiniLM slice simulated on the gate netlist
#   make pe-alternatives  two alternative GOBO PEs beside the present PE and the MAC PEs (OSU,
#                 one run, stalls from real MiniLM indexes; docs/efficiency.md "PE alternatives")
#   make accuracy whole-model accuracy of GOBO vs uniform and block-wise quantization
#   make run      the whole MiniLM with every FC layer on the bit-exact accelerator model (A16, A8)
#   make reference  the NumPy BERT against PyTorch/transformers (optional, own venv)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
GOBO   := $(VENV)/bin/gobo
STAMP  := $(VENV)/.installed
JOBS   ?= 2

.PHONY: all report verilog formal test test-full synth power latency bitstream accuracy run frontier bench-sim reference clean distclean

all: report verilog

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e .
	touch $@

report: $(STAMP)
	$(PY) scripts/bench_quantize.py --out build/reports

verilog: $(STAMP)
	$(GOBO) verilog --out build/verilog --lint

# Properties proved by k-induction or bounded model checking; PASS/FAIL per property.
formal: $(STAMP)
	$(PY) -m hw.formal.runner --out build/formal --jobs $(JOBS)

test: $(STAMP)
	$(PY) -m ruff check .
	$(MAKE) --no-print-directory formal
	$(PY) -m pytest -n $(JOBS) --durations=20 tests

# Not in CI: real text through every FC layer on the bit-exact tile model, then all 36 MiniLM
# encoder FC matrices through the tile RTL, 8 tokens, on a Dask LocalCluster (about 70 s), then
# `gobo run --rtl`: a 30-token tweet through all 36 layers on the RTL, host in between (3-6 min).
test-full: $(STAMP)
	$(PY) scripts/numerics_scan.py --out build/reports --sentences 300
	$(PY) scripts/simulate_all.py --out build/reports --tokens 8
	$(GOBO) run --rtl --out build/reports

synth: $(STAMP)
	$(GOBO) synth --out build/reports $(if $(filter 1,$(SWEEP)),--sweep)

latency: $(STAMP)
	$(GOBO) latency --out build/reports
power: $(STAMP)
	$(GOBO) synth --power --out build/reports

.PHONY: pe-alternatives
pe-alternatives: $(STAMP)
	$(GOBO) synth --alternatives --jobs 1 --out build/reports

BOARD ?= ulx3s-85f
bitstream: $(STAMP)
	$(PY) -m synth.bitstream --board $(BOARD) --out build/board

# Energy per inference and tile area with memories (docs/efficiency.md). The logic's energy comes
# from `make power` (build/reports/power.json) when it has run, or LOGIC="--logic-pj-per-op
# gobo=X ..." (every design); else the memories' energy alone.
.PHONY: efficiency
efficiency: $(STAMP)
	$(PY) scripts/energy_report.py --out build/reports $(or $(LOGIC),$(if $(wildcard \
	    build/reports/power.json),--power build/reports/power.json,--without-logic))

# Whole-model accuracy of GOBO, uniform and block-wise quantization on real English text.
accuracy: $(STAMP)
	$(PY) scripts/model_accuracy.py --out build/reports

# The whole model through the bit-exact accelerator model at A16 and A8, with the task measure.
run: $(STAMP)
	$(GOBO) run --out build/reports

# The accuracy-per-bit frontier of weights-only quantization (about 20 minutes on one core).
frontier: $(STAMP)
	$(PY) scripts/frontier.py --accelerator --out build/reports/frontier

# RTL simulation throughput: C++ loop, cocotb bench, old per-cycle bench (a few minutes cold).
bench-sim: $(STAMP)
	$(PY) scripts/bench_sim.py --out build/reports

# Optional check of the NumPy BERT against PyTorch/transformers, in a venv of its own.
# torch==2.13.0+cpu matches only the local CPU wheel in /opt/wheels, so pip fails rather than
# pull a CUDA build.
REFVENV := build/refvenv
$(REFVENV)/.installed:
	$(PYTHON) -m venv $(REFVENV)
	$(REFVENV)/bin/pip install --quiet torch==2.13.0+cpu
	$(REFVENV)/bin/pip install --quiet transformers==5.23.0 tokenizers==0.23.3
	touch $@

reference: $(REFVENV)/.installed
	$(REFVENV)/bin/python scripts/torch_reference.py --out build/reports

clean:
	rm -rf build/reports build/verilog build/sim build/cache build/runs build/synth build/formal \
	    build/board sim_build .pytest_cache

distclean: clean
	rm -rf $(VENV) build
