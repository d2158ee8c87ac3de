"""A SMART on FHIR client for every flow the lab exercises (what an AI vendor's app would do)."""
