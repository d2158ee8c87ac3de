"""Training exercises: a misconfigured vendor, a goal, the files a trainee may change, and a check
that replays the vendor against the trainee's files (`fhirlab exercise list | start | reset |
check`). model.py: the exercise files (catalogue/*.yaml); goals.py: what a check requires, judged
on a replay's runs; workspace.py: the trainee's copy of the files and what they may change."""
