"""What the admin shows of runs while they go on (its pages poll these): status, counts,
the step a run is in and each step's counters so far.

A running run's counters are the engine's last progress report (engine.progress, written
by services._ProgressWriter); a finished run's are its StepRun rows. A fixed number of
queries: one for the run, one more for a finished run's steps; one for a list of runs."""

from datetime import datetime

from django.utils import timezone

from apps.executions.models import Execution, StepRun

FIELDS = (
    "id",
    "status",
    "num_success",
    "num_error",
    "num_ignore",
    "progress",
    "started_at",
    "finished_at",
)
MAX_RUNS = 100  # runs one list request may ask about


def _elapsed(started: datetime | None, finished: datetime | None) -> float | None:
    if started is None:
        return None
    return round(((finished or timezone.now()) - started).total_seconds(), 1)


def _state(row: dict) -> dict:
    status = row["status"]
    progress = (row["progress"] or {}) if status == Execution.Status.RUNNING else {}
    steps = progress.get("steps") or []
    current = progress.get("current") or ""
    return {
        "id": str(row["id"]),
        "status": status,
        "statusLabel": Execution.Status(status).label,
        "finished": status in Execution.TERMINAL,
        "numSuccess": row["num_success"],
        "numError": row["num_error"],
        "numIgnore": row["num_ignore"],
        "elapsedSeconds": _elapsed(row["started_at"], row["finished_at"]),
        "current": current,
        "currentName": next((step["name"] for step in steps if step["path"] == current), ""),
        "steps": steps,
    }


def run_state(execution_id) -> dict | None:
    """One run as its page shows it live; None if there is no such run."""
    row = Execution.objects.filter(pk=execution_id).values(*FIELDS).first()
    if row is None:
        return None
    state = _state(row)
    if state["finished"]:
        state["steps"] = [
            {
                "path": step["path"],
                "kind": step["kind"],
                "name": step["name"],
                "in": step["records_in"],
                "out": step["records_out"],
                "errors": step["errors"],
            }
            for step in StepRun.objects.filter(execution_id=row["id"])
            .order_by("position")
            .values("path", "kind", "name", "records_in", "records_out", "errors")
        ]
    return state


def runs_state(execution_ids: list) -> list[dict]:
    """Several runs (the runs list), without their steps: one query."""
    rows = Execution.objects.filter(pk__in=execution_ids[:MAX_RUNS]).values(*FIELDS)
    states = []
    for row in rows:
        state = _state(row)
        del state["steps"]
        states.append(state)
    return states
