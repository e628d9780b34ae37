"""BICES: a coalition node that collects, labels, exploits and shares intelligence."""

__version__ = "0.1.0"
