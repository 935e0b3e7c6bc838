"""Formal wrappers of the hardware components (docs/verification.md): each wrapper drives a
component's inputs from free top-level ports, assumes what its environment guarantees and asserts
its properties; :mod:`hw.formal.runner` proves them with SymbiYosys."""
