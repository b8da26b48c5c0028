"""Verifying an image and a GPU host: the suites run against an image, their records, doctor."""
