"""The results directory of `fhirlab run` and `fhirlab lab`: `results.json` (versioned schema,
docs/reference/results.md), `report.md`, `report.html` with charts, and the audit log and alerts
written during the run."""

from simulator.results.directory import ResultsDirectory
from simulator.results.document import RESULTS_SCHEMA_VERSION, build_document
from simulator.results.write import write_results

__all__ = ["RESULTS_SCHEMA_VERSION", "ResultsDirectory", "build_document", "write_results"]
