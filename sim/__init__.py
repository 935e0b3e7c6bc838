"""cocotb testbenches and their runner: drive the generated Verilog with golden/ data."""
