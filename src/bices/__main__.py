"""`python -m bices` is the `bices` command."""

from bices.cli import main

main()
