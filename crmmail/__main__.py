"""Run the command-line interface with ``python -m crmmail``."""

from crmmail.cli import main

main()
