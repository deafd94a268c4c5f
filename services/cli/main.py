"""The ``kamwatch`` command line (typer): one module per group of commands, each adding its own."""

from __future__ import annotations

import typer

from services.cli import (
    alert_actions,
    health,
    inputs,
    keys,
    notifications,
    postmortems,
    processes,
    quarantine_actions,
)

app = typer.Typer(help="kamwatch: key-account health and churn early warning.", no_args_is_help=True)
for group in (processes, inputs, health, alert_actions, notifications, keys, postmortems, quarantine_actions):
    group.register(app)
