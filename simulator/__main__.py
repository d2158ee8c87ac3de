"""`python -m simulator` is the `fhirlab` command."""

from simulator.cli import main

main()
