"""Reproducible performance scripts for playground (not part of the test run; see README.md)."""
