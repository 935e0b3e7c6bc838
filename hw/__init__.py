"""GOBO hardware: Amaranth components (imports its parameters and layouts from golden/)."""
