"""Where one sync greeting call spends its time, in-process (issue "Hot path").

A fresh instance in a temporary FLOWSITE_VAR_DIR (SQLite, migrated, DEBUG=0, generated
secrets), an integration account holding use_api_key and run_flows with an API key, and
the greeting flow as bench/api.py creates it (one script step, `GET /greeting`, sync).
Then `GET /api/resources/greeting?name=<varied>` through Django's test client against the
real URLconf and middleware (no HTTP server, one thread):

- the mean ms per call over --calls calls (after --warmup calls);
- the SQL statements, writes and write transactions (BEGIN, as SQLite logs it) of one call,
  with --sql listing them;
- a cProfile of --calls more calls, the top --top functions by cumulative time
  (--tottime adds the top by own time).

    .venv/bin/python bench/profile_call.py [--calls 300] [--top 30] [--sql] [--tottime]

The script sandbox is the real one (a sandbox process per pool slot), so the script's
round trip is included, as it is in every call.
"""

import argparse
import cProfile
import io
import os
import pstats
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GREETING = (
    "function main(ctx) { return {statusCode: 200, result: 'Hello ' + "
    "ctx.trigger.args.request.query.name}; }"
)
PATH = "/api/resources/greeting"
WRITES = ("INSERT", "UPDATE", "DELETE")


def instance(var_dir: Path) -> None:
    os.environ.update(
        FLOWSITE_VAR_DIR=str(var_dir),
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(48),
        FLOWSITE_API_KEY_SECRET=secrets.token_urlsafe(48),
        FLOWSITE_ENCRYPTION_KEY=secrets.token_urlsafe(48),
        FLOWSITE_THROTTLE_KEY="1000000/min",
        FLOWSITE_THROTTLE_USER="1000000/min",
        DJANGO_SETTINGS_MODULE="flowsite.settings",
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)


def setup() -> str:
    """The caller and the greeting flow, as bench/api.py creates them; the key."""
    from django.contrib.auth.models import Permission

    from apps.accounts.models import Role, User
    from apps.accounts.services import create_api_key
    from apps.flows.models import Application, Flow, Script

    role = Role.objects.create(name="Bench callers")
    role.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="accounts", codename__in=["use_api_key", "run_flows"]
        )
    )
    user = User.objects.create_user("bench-caller", account_type=User.AccountType.INTEGRATION)
    role.members.add(user)
    key = create_api_key(owner=user, label="bench").plaintext
    app = Application.objects.create(name="Bench")
    script = Script.objects.create(name="prepareResponse", content=GREETING)
    Flow.objects.create(
        application=app,
        name="greeting",
        page_processors=[{"type": "script", "_scriptId": str(script.pk)}],
        api={"enabled": True, "method": "GET", "path": "/greeting", "mode": "sync"},
    )
    return key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="timed calls (and profiled)")
    parser.add_argument("--warmup", type=int, default=50, help="calls before measuring")
    parser.add_argument("--top", type=int, default=30, help="functions listed")
    parser.add_argument("--sql", action="store_true", help="list the SQL of one call")
    parser.add_argument("--tottime", action="store_true", help="also list by own time")
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="flowsite-profile-"))
    try:
        instance(var_dir)
        key = setup()
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        from apps.core.heap import freeze_startup_objects

        freeze_startup_objects()  # as the web server does once it has loaded the application
        client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {key}")
        counter = iter(range(10**9))

        def call() -> None:
            name = f"Leor{next(counter)}"
            response = client.get(PATH, {"name": name})
            if response.status_code != 200 or response.content != f'"Hello {name}"'.encode():
                raise SystemExit(f"{PATH} answered {response.status_code}: {response.content!r}")

        for _ in range(args.warmup):
            call()
        with CaptureQueriesContext(connection) as queries:
            call()
        sql = [q["sql"].strip() for q in queries.captured_queries]
        words = [statement.split(None, 1)[0].upper() for statement in sql]
        statements = [s for s, w in zip(sql, words, strict=True) if w not in ("SAVEPOINT",)]
        statements = [s for s in statements if not s.upper().startswith("RELEASE SAVEPOINT")]

        times = []
        for _ in range(args.calls):
            started = time.perf_counter()
            call()
            times.append((time.perf_counter() - started) * 1000)

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.calls):
            call()
        profiler.disable()

        load = os.getloadavg()
        print(
            f"greeting call, in-process: mean {statistics.fmean(times):.2f} ms, "
            f"median {statistics.median(times):.2f} ms, p90 "
            f"{statistics.quantiles(times, n=10)[-1]:.2f} ms over {args.calls} calls "
            f"(load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} cores)"
        )
        # SQLite logs BEGIN as SQL: one per write transaction (reads run in autocommit).
        print(
            f"SQL per call: {len(statements)} statements besides savepoints, of which "
            f"{sum(w in WRITES for w in words)} writes in {words.count('BEGIN')} write "
            f"transaction(s), {sum(w == 'SELECT' for w in words)} SELECTs"
        )
        if args.sql:
            for statement in sql:
                print("   ", statement[:220])
        orders = ("cumulative", "tottime") if args.tottime else ("cumulative",)
        for order in orders:
            text = io.StringIO()
            stats = pstats.Stats(profiler, stream=text)
            stats.strip_dirs().sort_stats(order).print_stats(args.top)
            print(f"--- cProfile of {args.calls} calls, by {order} ---")
            print(text.getvalue().split("\n", 6)[-1].rstrip())  # skip pstats' preamble
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
