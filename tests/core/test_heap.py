"""Web and worker processes freeze what they loaded at start-up out of the garbage
collector's sight (apps/core/heap.py): checked in fresh interpreters, as the servers
start them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Django, the apps and their modules: well over this many objects.
STARTUP_OBJECTS = 50_000


def frozen_after(code: str) -> int:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "flowsite.settings"}
    script = f"import gc\n{code}\nprint(gc.get_freeze_count())"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip().splitlines()[-1])


def test_nothing_is_frozen_by_merely_loading_django():
    assert frozen_after("import django; django.setup()") == 0


def test_the_web_application_freezes_what_it_loaded():
    assert frozen_after("import flowsite.wsgi") > STARTUP_OBJECTS


@pytest.mark.parametrize("signal", ["worker_init", "worker_process_init", "beat_init"])
def test_celery_processes_freeze_what_they_loaded_when_they_start(signal):
    code = (
        "import django; django.setup()\n"
        "from celery import signals\n"
        "import flowsite.celery\n"
        f"signals.{signal}.send(sender=None)"
    )
    assert frozen_after(code) > STARTUP_OBJECTS
