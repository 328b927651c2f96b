"""Start the web server, a Celery worker and Celery beat together; Ctrl-C stops all."""

import ctypes
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.core.startup import check_database, describe_database


def die_with_parent():
    """Children get SIGTERM if `serve` itself dies (Linux), so none is left orphaned."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def port_problem(host: str, port: int) -> str | None:
    """Refuse to start a second Flowsite (or over another program) on the same port."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            return (
                f"{host}:{port} is not free ({exc.strerror}): is Flowsite already running? "
                "Stop it, or set PORT."
            )
    return None


class Command(BaseCommand):
    help = "Serve Flowsite: gunicorn (web) + Celery worker + Celery beat, on HOST:PORT."

    def handle(self, *args, **options):
        if reason := check_database():
            raise CommandError(f"cannot use the database {describe_database()}: {reason}")
        if reason := port_problem(settings.HOST, settings.PORT):
            raise CommandError(reason)
        bin_dir = f"{sys.prefix}/bin"
        commands = {
            "web": [
                f"{bin_dir}/gunicorn",
                "flowsite.wsgi",
                "--bind",
                f"{settings.HOST}:{settings.PORT}",
                "--worker-class",
                "gthread",
                "--workers",
                str(settings.WEB_WORKERS),
                "--threads",
                str(settings.WEB_THREADS),
                # Without it gthread workers do not share keep-alive connections evenly. With
                # it a second server could share the port silently: port_problem() refuses.
                "--reuse-port",
                "--access-logfile",
                "-",
            ],
            "worker": [
                f"{bin_dir}/celery",
                "-A",
                "flowsite",
                "worker",
                "--concurrency",
                str(settings.CELERY_WORKER_CONCURRENCY),
                "--loglevel",
                "INFO",
            ],
            "beat": [f"{bin_dir}/celery", "-A", "flowsite", "beat", "--loglevel", "INFO"],
        }
        processes = {
            name: subprocess.Popen(cmd, preexec_fn=die_with_parent)  # noqa: S603
            for name, cmd in commands.items()
        }
        self.stdout.write(
            self.style.SUCCESS(
                f"Flowsite on http://{settings.HOST}:{settings.PORT}/admin/ "
                f"(API docs at /api/docs/). Ctrl-C stops web, worker and beat."
            )
        )

        def stop(*_):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        exit_code = 0
        try:
            while True:
                for name, process in processes.items():
                    if process.poll() is not None:
                        exit_code = process.returncode or 1
                        self.stderr.write(f"{name} stopped (exit {process.returncode}).")
                        raise KeyboardInterrupt
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            for process in processes.values():
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
        sys.exit(exit_code)
