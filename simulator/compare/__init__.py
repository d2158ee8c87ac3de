"""`fhirlab compare A B`: two runs or two configurations side by side (diff.py: what changed,
sides.py: what A and B are, replay.py: configurations replayed in one run, report.py: the
Markdown and HTML report)."""
