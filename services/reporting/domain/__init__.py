"""The reporting service's pure domain: days, runs, back-off, figures (no I/O)."""
