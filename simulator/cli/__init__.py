"""`fhirlab`: one command group, one module per subcommand.

Exit codes: 0 success, 1 error (a `LabError`, explained in one message), 2 usage,
3 an expectation failed, 130 interrupted. Logs and progress go to stderr, results to stdout.
"""

from __future__ import annotations

import sys

import typer

from labcore.errors import LabError
from simulator.cli import (
    audit_cmd,
    clients_cmd,
    compare_cmd,
    exercise_cmd,
    lab_cmd,
    load_cmd,
    logs_cmd,
    run_cmd,
    scenarios_cmd,
    seed_cmd,
    stack_cmds,
)
from simulator.cli.console import err

app = typer.Typer(
    name="fhirlab",
    help="A lab for the security of FHIR APIs used by healthcare AI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("up")(stack_cmds.up)
app.command("down")(stack_cmds.down)
app.command("status")(stack_cmds.status)
app.command("logs")(logs_cmd.logs)
app.command("lab")(lab_cmd.lab)
app.add_typer(clients_cmd.app, name="clients")
app.command("seed")(seed_cmd.seed)
app.command("run")(run_cmd.run)
app.command("load")(load_cmd.load)
app.command("compare")(compare_cmd.compare)
app.command("audit")(audit_cmd.audit_command)
app.add_typer(scenarios_cmd.app, name="scenarios")
app.add_typer(exercise_cmd.app, name="exercise")

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except LabError as exc:
        err.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        if exc.hint:
            err.print(f"  [yellow]fix:[/] {exc.hint}", highlight=False)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        sys.exit(EXIT_INTERRUPTED)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)
