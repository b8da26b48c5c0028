"""Allow ``python -m dlbase`` where the console script is not on PATH."""

from dlbase.cli.app import main

main()
