"""Benchmarks: what the image design buys, measured side by side in one run."""
