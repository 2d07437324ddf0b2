"""Evaluation: datasets, metrics, runs written to folders, comparisons."""
