"""`fhirlab audit`: answer the twelve-item checklist for any SMART on FHIR deployment, with
evidence and the HIPAA provisions each item serves."""
