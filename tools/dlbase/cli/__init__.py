"""The command line: parsing, output for people and programs, exit codes."""

from dlbase.cli.app import main

__all__ = ["main"]
