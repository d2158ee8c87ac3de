"""fhirlab simulator: the lab's CLI, stack launcher, SMART client, scenario engine and reports."""
