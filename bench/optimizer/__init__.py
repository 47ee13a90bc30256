"""Benchmarks of the optimizer library against GerryChain and PySAL spopt on the real Census data."""
