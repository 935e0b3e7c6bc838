"""GOBO golden model: pure Python + NumPy, never imports Amaranth."""
