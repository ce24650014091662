"""The `flask --app wsgi …` commands from CONTRACT.md."""

import getpass
import os

import click
from flask import current_app

from models.errors import DomainError


def register_commands(app):
    """Attach the CLI commands to the app."""

    @app.cli.command("seed-demo")
    def seed_demo_command():
        """Create the demo clinic, providers, services, schedules and users (idempotent)."""
        from models.seed import DEMO_PASSWORD, seed_demo

        password = os.environ.get("DEMO_PASSWORD") or DEMO_PASSWORD
        clinic, logins = seed_demo(password, hold_minutes=current_app.config["HOLD_MINUTES"])
        click.echo(f"Demo data ready for {clinic.name} ({clinic.timezone}).")
        for who, email in logins:
            click.echo(f"  {who:<20} {email}  password: {password}")

    @app.cli.command("create-staff")
    @click.option("--email", required=True, help="The staff member's email (their login).")
    @click.option("--role", required=True, type=click.Choice(["admin", "reception", "provider"]))
    @click.option("--name", default="", help="Display name.")
    def create_staff_command(email, role, name):
        """Create a staff user; the password comes from STAFF_PASSWORD or a prompt."""
        from models.accounts import create_staff

        password = os.environ.get("STAFF_PASSWORD")
        if not password:
            password = getpass.getpass("Password: ")
            if getpass.getpass("Repeat password: ") != password:
                raise click.ClickException("the passwords do not match")
        try:
            staff = create_staff(email, role, password, name)
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
        click.echo(f"Staff user {staff.email} ({staff.role}) is ready.")

    @app.cli.command("sweep")
    def sweep_command():
        """One pass: expire holds, reconcile payments with Stripe, send the email that is due."""
        from models.sweep import sweep

        report = sweep()
        for line in report.lines():
            click.echo(line)

    @app.cli.command("worker")
    def worker_command():
        """Run until stopped: send queued email and texts within seconds (woken through Redis),
        and run the sweep's pass every minute. Any number may run at once."""
        import signal

        from models.worker import Worker

        worker = Worker(poll_seconds=current_app.config.get("WORKER_POLL_SECONDS", 5),
                        echo=lambda line: click.echo(line, err=False))
        signal.signal(signal.SIGTERM, worker.stop)
        signal.signal(signal.SIGINT, worker.stop)
        click.echo("worker: started; waiting for messages (SIGTERM or Ctrl-C stops it)")
        worker.run()
