"""Shared Rich consoles: `out` for results (stdout), `err` for logs and progress (stderr)."""

from rich.console import Console

out = Console()
err = Console(stderr=True)
