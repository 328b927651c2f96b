"""Query() and Execute() over HTTP on a table of a million leads (make bench).

A bench database is created (PostgreSQL when DATABASE_URL names one, else SQLite in a
temporary FLOWSITE_VAR_DIR), migrated, and given the Lead record type (Company, Contact,
Email, Phone, Lead Source, Rating Hot/Warm/Cold, Notes) with --records rows loaded in bulk
(COPY on PostgreSQL, executemany on SQLite, with a matching SubmissionCounter: not through
the per-record services), the surface switched on, an integration account with an API key
(use_api_key, query_views, execute_operations), the views "Leads by Rating" (Rating eq
parameter `rating`) and "All Leads", and the operation "Register Lead" (create).

`manage.py serve` then serves it on a free port and a keep-alive client (wrk when
installed, else Python threads) loads it over loopback, a page of 100 each, every request
of a scenario asking for the next of its values in turn (a wrk Lua script cycling through
the paths; the Python client does the same):

  (a) Leads by Rating?rating=Hot|Warm|Cold   the JSON filter (`data @> …` on PostgreSQL)
  (b) All Leads?since=<one of 200>            incremental sync: 200 values spread over the
                                              last 50,000 SubmissionIds (every page full)
  (c) All Leads                               the first page
  (d) All Leads?cursor=<one of 100>           keyset pages: 100 cursors spread through the
                                              table
  (e) POST Execute() Register Lead            creates a lead (a new ExternalTransactionId
                                              each)

Each scenario is loaded at --connections (16) after a warm-up, then by one client sending
its requests one after the other (`wrk -t1 -c1`, "alone") for as long, and held to the
issue's targets: (a)-(d) >= 500 req/s at c=16 and p50 alone <= 10 ms; (e) >= 300 req/s.

Before serving, each query's SQL is captured from one in-process request (with nothing
remembered, then again warm) and EXPLAINed (EXPLAIN ANALYZE on PostgreSQL, EXPLAIN QUERY
PLAN on SQLite), and the requests are timed in-process through Django's test client. The
bench database is dropped at the end unless --keep; an existing database is never dropped
unless --replace.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/benchquery \\
        .venv/bin/python bench/query.py [--write] [--records 1000000] [--keep]
    .venv/bin/python bench/query.py --sqlite --records 200000 --write
"""

import argparse
import concurrent.futures
import contextlib
import dataclasses
import itertools
import json
import os
import platform
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import urllib3
from api import (
    children_cpu,
    fmt_ms,
    free_port,
    machine_ticks,
    parse_wrk,
    percentile,
    role_cpu,
    start_server,
    stop_server,
    tail,
    wait_healthy,
)
from sections import read_section, write_section

ROOT = Path(__file__).resolve().parent.parent
TITLE = "## Query() and Execute() (bench/query.py)"
THROTTLE = "1000000/min"
APP = "Lead Registration"
RATINGS = (("Hot", 20), ("Warm", 35), ("Cold", 45))  # share of the records, in %
SOURCES = ("Web", "Referral", "Trade Show", "Partner", "Cold Call")
FIELDS = (
    {"name": "Company", "type": "text", "required": True},
    {"name": "Contact", "type": "text"},
    {"name": "Email", "type": "email"},
    {"name": "Phone", "type": "text"},
    {"name": "Lead Source", "type": "choice", "choices": list(SOURCES)},
    {"name": "Rating", "type": "choice", "choices": [name for name, _ in RATINGS]},
    {"name": "Notes", "type": "long text"},
)
FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim")
LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson")
KINDS = ("Logistics", "Foods", "Robotics", "Textiles", "Analytics", "Mining", "Energy", "Labs")
NOTES = (
    "Met at the spring trade show; wants a demo for the operations team.",
    "Asked for pricing for 50 seats and an on-premises option.",
    "Follow up after their budget review in the next quarter.",
    None,
    None,
)
QUERY = f"/api/rest/query/{quote(APP)}"
EXECUTE = f"/api/rest/execute/{quote(APP)}/{quote('Register Lead')}"
BODY = {
    "RecordID": None,
    "ExternalTransactionId": "",
    "Company": "Bench Robotics",
    "Contact": "Ada Lovelace",
    "Email": "ada@example.com",
    "Phone": "+1 555 0100",
    "Lead Source": {"Selection": "Web"},
    "Rating": {"Selection": "Warm"},
    "Notes": "Registered by bench/query.py.",
}
# wrk: a POST with a new ExternalTransactionId each time (prefix per run, id per thread).
EXECUTE_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
counter = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  prefix = args[1]
end
function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, string.format(BODY, prefix, tid, counter))
end
"""

# wrk: GET the paths of PATHS (defined above this by wrk_run) in turn, each thread
# starting at a different place; the Authorization header given by -H stays in wrk.headers.
PATHS_LUA = """
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local i = 0
function init(args)
  i = ((tid or 1) - 1) * 7919 % #PATHS
end
function request()
  i = i % #PATHS + 1
  return wrk.format(nil, PATHS[i])
end
"""

SINCE_VALUES, SINCE_WINDOW = 200, 50_000  # (b): this many `since`, over the last ids
CURSORS = 100  # (d): keyset cursors spread through the table
SCENARIOS = {  # letter: description (the paths are made once the data is loaded)
    "a": "Leads by Rating?rating=Hot|Warm|Cold: JSON filter, first page",
    "b": f"All Leads?since=…: {SINCE_VALUES} values over the last {SINCE_WINDOW:,} SubmissionIds",
    "c": "All Leads: first page",
    "d": f"All Leads?cursor=…: {CURSORS} keyset cursors spread through the table",
    "e": "Execute() Register Lead: POST, creates a lead",
}
DISTURBED = 0.3  # cores used by other processes: the c=16 run is measured again above this
ATTEMPTS = 3  # at most, the least disturbed kept
ALONE = 1  # connections of the "alone" run: one client, one request after the other
TARGET_CONNECTIONS = 16  # the concurrency
TARGET_RPS = {"a": 500, "b": 500, "c": 500, "d": 500, "e": 300}  # at TARGET_CONNECTIONS
TARGET_ALONE_P50_MS = {"a": 10.0, "b": 10.0, "c": 10.0, "d": 10.0}
KEPT = "<!-- kept: notes written by hand, carried over by bench/query.py -->"


@dataclasses.dataclass
class Scenario:
    """One scenario's requests: `paths` asked in turn, each with the `values` it asks for
    (what the check of its answer expects)."""

    letter: str
    method: str
    paths: list[str]
    values: list

    @property
    def sample(self) -> int:
        """The index of the request checked, EXPLAINed and captured in-process."""
        return len(self.paths) // 2


# --- The database -----------------------------------------------------------------------


def maintenance_url(url: str) -> tuple[str, str]:
    """(URL of the server's `postgres` database, name of the bench database)."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name:
        raise SystemExit(f"DATABASE_URL names no database: {url}")
    return urlunsplit(parts._replace(path="/postgres")), name


def create_postgres(url: str, replace: bool) -> None:
    import psycopg
    from psycopg import sql

    admin, name = maintenance_url(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and not replace:
            raise SystemExit(
                f"database {name!r} exists already: the bench loads and drops a database of "
                "its own. Name a new one in DATABASE_URL, or pass --replace to drop it first."
            )
        if exists:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_postgres(url: str) -> None:
    import psycopg
    from psycopg import sql

    admin, name = maintenance_url(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def instance_env(var_dir: Path, port: int, database_url: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    env.update(
        FLOWSITE_VAR_DIR=str(var_dir),
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(48),
        FLOWSITE_API_KEY_SECRET=secrets.token_urlsafe(48),
        FLOWSITE_ENCRYPTION_KEY=secrets.token_urlsafe(48),
        HOST="127.0.0.1",
        PORT=str(port),
        FLOWSITE_THROTTLE_KEY=THROTTLE,
        FLOWSITE_THROTTLE_USER=THROTTLE,
        DJANGO_SETTINGS_MODULE="flowsite.settings",
        PYTHONPATH=str(ROOT),
    )
    return env


def set_up() -> dict:
    """The Lead record type, the surface, the caller with its key, the views and the
    operation (through the app's own services and model validation)."""
    from django.contrib.auth.models import Permission

    from apps.accounts.models import Role, User
    from apps.accounts.privileges import Privilege
    from apps.accounts.services import create_api_key
    from apps.flows.models import Application
    from apps.records.services import save_record_type
    from apps.surface.models import Operation, View
    from apps.surface.services import configure_surface

    application = Application.objects.create(name=APP)
    lead = save_record_type(
        document={"name": "Lead", "_integrationId": str(application.pk), "fields": list(FIELDS)}
    )
    role = Role.objects.create(name="Bench surface callers")
    wanted = (Privilege.USE_API_KEY, Privilege.QUERY_VIEWS, Privilege.EXECUTE_OPERATIONS)
    role.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="accounts", codename__in=[p.value for p in wanted]
        )
    )
    user = User.objects.create_user("bench-restuser", account_type=User.AccountType.INTEGRATION)
    role.members.add(user)
    key = create_api_key(owner=user, label="bench/query.py").plaintext
    configure_surface(execute=True, query=True, integration_accounts=[user])
    for view in (
        View(
            application=application,
            record_type=lead,
            name="Leads by Rating",
            rest_query=True,
            filters=[{"field": "Rating", "op": "eq", "parameter": "rating"}],
            parameters=[{"name": "rating", "type": "choice", "required": False}],
        ),
        View(application=application, record_type=lead, name="All Leads", rest_query=True),
    ):
        view.full_clean()
        view.save()
    operation = Operation(
        application=application,
        record_type=lead,
        name="Register Lead",
        action=Operation.Action.CREATE,
        rest_execute=True,
    )
    operation.full_clean()
    operation.save()
    return {"key": key, "lead": lead, "user": user}


def lead_rows(count: int, seed: int = 42):
    """(data JSON, submission id, created at) of `count` generated leads, oldest first."""
    rng = random.Random(seed)  # noqa: S311 - test data
    names = [name for name, _ in RATINGS]
    weights = [weight for _, weight in RATINGS]
    ratings = rng.choices(names, weights, k=count)
    start = datetime.now(UTC) - timedelta(seconds=count)
    for index in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        data = {
            "Company": f"{last} {rng.choice(KINDS)} {index + 1}",
            "Contact": f"{first} {last}",
            "Email": f"{first}.{last}{index + 1}@example.com".lower(),
            "Phone": f"+1 555 {rng.randrange(10000):04d}",
            "Lead Source": rng.choice(SOURCES),
            "Rating": ratings[index],
            "Notes": rng.choice(NOTES),
        }
        yield json.dumps(data, separators=(", ", ": ")), index + 1, start + timedelta(seconds=index)


def load_postgres(connection, record_type_id: int, user_id: int, count: int) -> None:
    """COPY the rows in, with the table's secondary indexes dropped meanwhile and then
    created again from their own definitions (pg_indexes), exactly as migrated."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'records_record' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint "
            "WHERE conrelid = 'records_record'::regclass)"
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        columns = "record_type_id, data, submission_id, created_by_id, modified_by_id, "
        columns += "created_at, modified_at"
        raw = cursor.cursor  # psycopg's own cursor, for COPY
        prefix = f"{record_type_id}\t"
        who = f"\t{user_id}\t{user_id}\t"
        with raw.copy(f"COPY records_record ({columns}) FROM STDIN") as copy:
            chunk = []
            for data, submission_id, created in lead_rows(count):
                stamp = created.isoformat()
                text = data.replace("\\", "\\\\")
                chunk.append(f"{prefix}{text}\t{submission_id}{who}{stamp}\t{stamp}\n")
                if len(chunk) == 20_000:
                    copy.write("".join(chunk))
                    chunk = []
            copy.write("".join(chunk))
        # The foreign keys are checked now (deferred, they would be at commit): an index
        # cannot be built on a table with pending trigger events.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for _, definition in indexes:
            cursor.execute(definition)
        print(f"  indexes created again: {', '.join(name for name, _ in indexes)}")


def load_sqlite(connection, record_type_id: int, user_id: int, count: int) -> None:
    insert = (
        "INSERT INTO records_record (record_type_id, data, submission_id, created_by_id, "
        "modified_by_id, created_at, modified_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
    )
    with connection.cursor() as cursor:
        batch = []
        for data, submission_id, created in lead_rows(count):
            stamp = created.replace(tzinfo=None).isoformat(sep=" ")
            batch.append((record_type_id, data, submission_id, user_id, user_id, stamp, stamp))
            if len(batch) == 20_000:
                cursor.executemany(insert, batch)
                batch = []
        if batch:
            cursor.executemany(insert, batch)


def load(vendor: str, lead, user, count: int) -> float:
    """The rows and a SubmissionCounter that matches them, in one transaction."""
    from django.db import connection, transaction

    from apps.records.models import SubmissionCounter

    started = time.monotonic()
    with transaction.atomic():
        loader = load_postgres if vendor == "postgresql" else load_sqlite
        loader(connection, lead.pk, user.pk, count)
        SubmissionCounter.objects.update_or_create(record_type=lead, defaults={"last_value": count})
    if vendor == "postgresql":
        with connection.cursor() as cursor:  # as autovacuum would after such a load
            cursor.execute("VACUUM (ANALYZE) records_record")
    return time.monotonic() - started


# --- In-process: the SQL, its plan, the cost of one request ------------------------------


def capture_sql(client, method: str, path: str, body: str | None) -> tuple[int, list]:
    from django.db import connection

    statements = []

    def remember(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(remember):
        response = send(client, method, path, body)
    return response.status_code, statements


def send(client, method: str, path: str, body: str | None):
    if method == "POST":
        return client.post(path, body, content_type="application/json")
    return client.get(path)


def main_query(statements: list) -> tuple[str, tuple] | None:
    """The SELECT that reads the page of records."""
    for sql, params in statements:
        if sql.lstrip().upper().startswith("SELECT") and 'FROM "records_record"' in sql:
            return sql, params
    return None


def explain(vendor: str, sql: str, params) -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            lines = [row[0] for row in cursor.fetchall()]
            time_ms = float(re.search(r"Execution Time: ([\d.]+) ms", "\n".join(lines)).group(1))
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            lines = [row[-1] for row in cursor.fetchall()]
            runs = []
            for _ in range(5):
                started = time.perf_counter()
                cursor.execute(sql, params)
                cursor.fetchall()
                runs.append((time.perf_counter() - started) * 1000)
            time_ms = min(runs)
    return {"plan": lines, "ms": time_ms, "summary": summarise(vendor, lines, time_ms)}


NODE = re.compile(
    r"^(Limit|Sort|Incremental Sort|Bitmap Heap Scan|Bitmap Index Scan|Index Scan|"
    r"Index Only Scan|Seq Scan|Parallel Seq Scan|Gather)\b"
)


def summarise(vendor: str, lines: list[str], time_ms: float) -> str:
    """The plan's nodes that read records_record (and Limit/Sort), in one line."""
    if vendor != "postgresql":
        ours = [line for line in lines if re.search(r"\brecords_record\b", line)]
        return f"{'; '.join(ours)}; {time_ms:.2f} ms"
    nodes: list[str] = []
    keep = False
    for line in lines:
        text = line.strip().removeprefix("->").strip()
        if NODE.match(text):
            keep = "accounts_user" not in text and "records_recordtype" not in text
            if keep:
                name = re.sub(r"\s*\(cost=.*", "", text)
                actual = re.search(r"actual time=[\d.]+\.\.[\d.]+ rows=(\d+)", text)
                nodes.append(name + (f" ({actual.group(1)} rows" if actual else " ("))
        elif keep and text.startswith(("Rows Removed by Filter", "Filter:", "Index Cond:")):
            label, _, value = text.partition(":")
            nodes[-1] += f", {label.lower()} {value.strip()}"
        elif keep and text.startswith(("Recheck Cond:", "Heap Blocks:", "Sort Method:")):
            nodes[-1] += f", {text[0].lower()}{text[1:]}"
    nodes = [node + ")" if not node.endswith("(") else node[:-2] for node in nodes]
    return f"{' → '.join(nodes)}; execution {time_ms:.2f} ms"


def verdict(vendor: str, plan: dict) -> str:
    text = "\n".join(plan["plan"])
    if vendor == "postgresql":
        if "records_record_data_gin" in text:
            how = "the GIN index on data (jsonb_path_ops) serves `data @> …`"
        elif re.search(r"Seq Scan on records_record", text):
            how = "no index: a sequential scan of records_record"
        else:
            used = sorted(
                set(
                    re.findall(
                        r"Index (?:Only )?Scan(?: Backward)? using (\w+) on records_record\b",
                        text,
                    )
                )
            )
            how = (
                f"the b-tree {', '.join(used)} gives RecordID order; the JSON filter is "
                "applied row by row"
            )
    else:
        if "SCAN" in text and "USING" not in text:
            how = "no index: a full scan"
        else:
            how = "an index gives RecordID order, the JSON filter is applied row by row"
    return how


def forget_remembered() -> None:
    """Empty every short-lived memory of this process (API keys, the surface's lookups…),
    as a process finds them when nothing was asked of it for half a second."""
    from apps.core.memory import _MEMORIES

    for memory in list(_MEMORIES):
        memory.clear()


def statement_names(statements: list) -> list[str]:
    """Each statement in a few words: its verb and first table (`… FOR UPDATE` noted)."""
    out = []
    for sql, _ in statements:
        text = sql.strip()
        verb = text.split()[0].upper() if text else "?"
        if verb == "SELECT":
            table = re.search(r'\bFROM\s+"?(\w+)', text)
            name = f"SELECT {table.group(1) if table else ''}".strip()
            if re.search(r"\bFOR UPDATE\b", text, re.I):
                name += " FOR UPDATE"
        elif verb in ("INSERT", "DELETE"):
            table = re.search(r'\b(?:INTO|FROM)\s+"?(\w+)', text)
            name = f"{verb} {table.group(1) if table else ''}".strip()
        elif verb == "UPDATE":
            table = re.search(r'^UPDATE\s+"?(\w+)', text, re.I)
            name = f"UPDATE {table.group(1) if table else ''}".strip()
        else:
            name = verb
        out.append(name)
    return out


def in_process(key: str, scenarios: dict, bodies, vendor: str) -> tuple[dict, dict]:
    """Per scenario: ms per request through Django's test client (one thread, no HTTP,
    its paths in turn), the SQL statements of its sample request with nothing remembered
    (cold) and again right after (warm), and the plan of the query that reads the page."""
    from django.test import Client

    from apps.core.heap import freeze_startup_objects

    freeze_startup_objects()  # as the web server does once it has loaded the application
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {key}")
    costs, plans = {}, {}
    for letter, scenario in scenarios.items():
        method, path = scenario.method, scenario.paths[scenario.sample]
        expected = 201 if method == "POST" else 200
        forget_remembered()
        runs = []
        for _ in range(2):  # cold, then warm
            status, statements = capture_sql(client, method, path, next(bodies))
            if status != expected:
                raise SystemExit(f"({letter}) in-process answered {status}, expected {expected}")
            runs.append(statements)
        cold, warm = runs
        query = main_query(warm)
        if query and method == "GET":
            plans[letter] = explain(vendor, *query)
        turn = itertools.cycle(scenario.paths)
        for _ in range(10):
            send(client, method, next(turn), next(bodies))
        n = 100 if method == "GET" else 50
        started = time.perf_counter()
        for _ in range(n):
            send(client, method, next(turn), next(bodies))
        costs[letter] = {
            "ms": (time.perf_counter() - started) * 1000 / n,
            "queries": len(warm),
            "cold_queries": len(cold),
            "warm": statement_names(warm),
        }
        print(
            f"  in-process ({letter}): {costs[letter]['ms']:.2f} ms/request, "
            f"{len(warm)} SQL statements warm ({len(cold)} cold): "
            + ", ".join(costs[letter]["warm"])
            + (f"; query {plans[letter]['ms']:.2f} ms" if letter in plans else "")
        )
    return costs, plans


def profile(key: str, paths: list[str], top: int = 25) -> dict[str, float]:
    """cProfile of 100 requests of one read (its paths in turn), in-process (--profile)."""
    import cProfile
    import io
    import pstats

    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {key}")
    turn = itertools.cycle(paths)
    client.get(next(turn))
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(100):
        client.get(next(turn))
    profiler.disable()
    for order in ("tottime", "cumulative"):
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats(order).print_stats(top)
        print(text.getvalue())
    stats = pstats.Stats(profiler).stats  # {(file, line, name): (cc, nc, tt, ct, callers)}

    def cumulative(name: str, where: str) -> float:
        # The largest: Client.get calls RequestFactory.get, both named get.
        return max(
            (row[3] for (file, _, func), row in stats.items() if func == name and where in file),
            default=0.0,
        )

    return {
        "total": cumulative("get", "django/test/client.py"),
        "query_records": cumulative("query_records", "apps/records/selectors.py"),
        # Compiling the page's SELECT (DocumentText.as_sql is compiled within it).
        "compile": cumulative("as_sql", "django/db/models/sql/compiler.py"),
        "document_sql": cumulative("as_sql", "apps/records/documents_sql.py"),
        # Sending the statement and waiting for its rows (the database's time and the trip).
        "execute": cumulative("_execute", "django/db/backends/utils.py"),
        # Encrypting the next page's cursor (Fernet).
        "cursor": cumulative("_cursor", "apps/records/selectors.py"),
    }


def rating_plans(lead, vendor: str) -> dict[str, dict]:
    """The plan of the filtered page for each rating (their shares differ)."""
    from django.db import connection

    from apps.surface.models import View
    from apps.surface.selectors import query_view

    view = View.objects.get(application__name=APP, name="Leads by Rating")
    out = {}
    for rating, _ in RATINGS:
        statements = []

        def remember(execute, sql, params, many, context, into=statements):
            into.append((sql, params))
            return execute(sql, params, many, context)

        with connection.execute_wrapper(remember):
            query_view(view, {"rating": rating})
        out[rating] = explain(vendor, *main_query(statements))
    return out


# --- Load -------------------------------------------------------------------------------


def bodies():
    """Execute() bodies, each with a new ExternalTransactionId."""
    run = secrets.token_hex(4)
    for number in itertools.count(1):
        yield json.dumps({**BODY, "ExternalTransactionId": f"bench-{run}-{number}"})


def wrk_run(
    wrk: str, base: str, key: str, scenario: Scenario, connections: int, seconds: int, work: Path
) -> dict:
    cmd = [wrk, f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    cmd += ["--timeout", "10s", "-H", f"Authorization: Bearer {key}"]
    script = work / f"{scenario.letter}.lua"
    if scenario.method == "POST":
        body = json.dumps({**BODY, "ExternalTransactionId": "bench-%s-%d-%d"})
        script.write_text(f"BODY = {json.dumps(body)}\n" + EXECUTE_LUA)
        cmd += ["-s", str(script), base + scenario.paths[0], "--", secrets.token_hex(4)]
    else:
        # Lua string literals: the paths are ASCII (quoted), so JSON's escapes are Lua's.
        listed = ",\n  ".join(json.dumps(path) for path in scenario.paths)
        script.write_text(f"PATHS = {{\n  {listed}\n}}\n" + PATHS_LUA)
        cmd += ["-s", str(script), base + scenario.paths[0]]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode:
        raise SystemExit(f"wrk failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return parse_wrk(result.stdout)


def python_run(base: str, key: str, scenario: Scenario, connections: int, seconds: int) -> dict:
    """The same as wrk with a thread per connection (urllib3, keep-alive), each sending the
    scenario's paths in turn from its own starting place."""
    parts = urlsplit(base)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    made = bodies()
    method, paths = scenario.method, scenario.paths
    deadline = time.monotonic() + seconds

    def client(number):
        pool = urllib3.HTTPConnectionPool(
            parts.hostname, parts.port, maxsize=1, retries=False, timeout=10
        )
        turn = itertools.islice(itertools.cycle(paths), number * 7919 % len(paths), None)
        latencies, bad, errors = [], 0, 0
        while time.monotonic() < deadline:
            body = next(made) if method == "POST" else None
            target = next(turn)
            sent = time.perf_counter()
            try:
                response = pool.request(method, target, body=body, headers=headers)
            except urllib3.exceptions.HTTPError:
                errors += 1
                continue
            latencies.append((time.perf_counter() - sent) * 1000)
            bad += not 200 <= response.status < 300
        return latencies, bad, errors

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(connections) as pool:
        results = list(pool.map(client, range(connections)))
    elapsed = time.monotonic() - started
    latencies = [ms for result in results for ms in result[0]]
    return {
        "rps": len(latencies) / elapsed,
        "requests": len(latencies),
        "p50": percentile(latencies, 50) if latencies else None,
        "p99": percentile(latencies, 99) if latencies else None,
        "non2xx": sum(result[1] for result in results),
        "socket_errors": sum(result[2] for result in results),
    }


def postgres_cpu() -> float:
    """CPU seconds used so far by the PostgreSQL server: its live processes, and the
    backends that exited (the postmaster's reaped children: the web server's connections
    are closed and opened again every DB_CONN_MAX_AGE seconds, 60 by default)."""
    hz = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            head, tail_ = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)
        except OSError:
            continue
        if head.split("(", 1)[1] != "postgres":  # the command's name: postmaster, backends
            continue
        rest = tail_.split()
        # utime, stime, and cutime, cstime: only the postmaster has children it reaped.
        total += sum(int(value) for value in rest[11:15]) / hz
    return total


class Sessions:
    """Samples pg_stat_activity of the bench database every 0.1 s while a run lasts: how
    many of its client backends were active, and on what the active ones waited."""

    def __init__(self, database_url: str | None):
        self.url = database_url
        self.samples: list[tuple[int, int, list[str]]] = []
        self._stop = None
        self._thread = None

    def __enter__(self):
        if not self.url:
            return self
        import threading

        import psycopg

        self._stop = threading.Event()
        connection = psycopg.connect(self.url, autocommit=True)

        def sample():
            with connection:
                while not self._stop.wait(0.1):
                    rows = connection.execute(
                        "SELECT wait_event_type, wait_event FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                        "AND backend_type = 'client backend' AND state = 'active'"
                    ).fetchall()
                    locks = sum(1 for kind, _ in rows if kind == "Lock")
                    waits = [f"{kind}:{name}" for kind, name in rows if kind]
                    self.samples.append((len(rows), locks, waits))

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_):
        if self._thread is not None:
            self._stop.set()
            self._thread.join()

    def summary(self) -> dict | None:
        if not self.samples:
            return None
        n = len(self.samples)
        counts: dict[str, int] = {}
        for _, _, waits in self.samples:
            for wait in waits:
                counts[wait] = counts.get(wait, 0) + 1
        return {
            "samples": n,
            "active": sum(active for active, _, _ in self.samples) / n,
            "locked": sum(locks for _, locks, _ in self.samples) / n,
            "some_locked": sum(1 for _, locks, _ in self.samples if locks) / n,
            "waits": sorted(counts.items(), key=lambda item: -item[1])[:3],
        }


def load_average() -> float:
    return os.getloadavg()[0]


def measure(
    client: str,
    base: str,
    key: str,
    scenario: Scenario,
    args,
    work: Path,
    marker: bytes,
    database_url: str | None,
) -> dict:
    """The scenario at --connections after a warm-up (with the CPU each part used and, on
    PostgreSQL, samples of its sessions), then alone: one client, sequential requests."""

    def once(connections, seconds):
        if client == "wrk":
            wrk = shutil.which("wrk")
            return wrk_run(wrk, base, key, scenario, connections, seconds, work)
        return python_run(base, key, scenario, connections, seconds)

    letter = scenario.letter
    cores = os.cpu_count() or 1

    def loaded() -> dict:
        once(args.connections, args.warmup)
        web, pg, ticks, own = role_cpu(marker), postgres_cpu(), machine_ticks(), children_cpu()
        started = time.monotonic()
        with Sessions(database_url) as sessions:
            result = once(args.connections, args.duration)
        elapsed = time.monotonic() - started
        web_after, ticks_after = role_cpu(marker), machine_ticks()
        per_request = 1000 / max(1, result["requests"])
        result.update(
            letter=letter,
            seconds=elapsed,
            load=load_average(),
            busy=(ticks_after[0] - ticks[0]) / max(1, ticks_after[1] - ticks[1]),
            cpu_ms={
                "web": (web_after.get("web", 0.0) - web.get("web", 0.0)) * per_request,
                "postgres": (postgres_cpu() - pg) * per_request if database_url else None,
                "client": (children_cpu() - own) * per_request if client == "wrk" else None,
            },
            sessions=sessions.summary(),
            failed=bool(result["non2xx"] or result["socket_errors"]),
        )
        ours = sum(v for v in result["cpu_ms"].values() if v is not None) / per_request
        result["other_cores"] = max(0.0, result["busy"] * cores - ours / elapsed)
        return result

    tries = [loaded()]
    while tries[-1]["other_cores"] > DISTURBED and len(tries) < ATTEMPTS:
        print(
            f"({letter}) c={args.connections}: {tries[-1]['rps']:,.0f} req/s, but other "
            f"processes used {tries[-1]['other_cores']:.2f} cores: measuring again",
            flush=True,
        )
        tries.append(loaded())
    result = min(tries, key=lambda r: r["other_cores"])  # the least disturbed
    alone = once(ALONE, args.duration)
    result["alone"] = alone
    result["load_alone"] = load_average()
    result["failed"] |= bool(alone["non2xx"] or alone["socket_errors"])
    cpu = ", ".join(f"{name} {ms:.2f}" for name, ms in result["cpu_ms"].items() if ms is not None)
    waits = result["sessions"]
    print(
        f"({letter}) c={args.connections}: {result['rps']:,.0f} req/s, p50 "
        f"{fmt_ms(result['p50'])}, p99 {fmt_ms(result['p99'])}, non-2xx {result['non2xx']}, "
        f"socket errors {result['socket_errors']}; cores busy {result['busy'] * cores:.2f} "
        f"of {cores} over {result['seconds']:.0f} s (other processes {result['other_cores']:.2f}); "
        f"CPU ms/request: {cpu}; load average "
        f"{result['load']:.2f}"
        + (
            f"; active sessions {waits['active']:.1f} on average, waiting on a lock "
            f"{waits['locked']:.2f} ({waits['some_locked']:.0%} of samples)"
            if waits
            else ""
        ),
        flush=True,
    )
    print(
        f"({letter}) alone: {alone['rps']:,.0f} req/s, p50 {fmt_ms(alone['p50'])}, p99 "
        f"{fmt_ms(alone['p99'])}, non-2xx {alone['non2xx']}, socket errors "
        f"{alone['socket_errors']}; load average {result['load_alone']:.2f}"
        + ("  ** FAILED **" if result["failed"] else ""),
        flush=True,
    )
    return result


def check_answers(base: str, key: str, scenarios: dict, expect: dict) -> None:
    """One request of each scenario (its sample) over HTTP, and its answer checked
    against the value it asked for."""
    http = urllib3.PoolManager(retries=False, timeout=30)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    for letter, scenario in scenarios.items():
        method = scenario.method
        path, value = scenario.paths[scenario.sample], scenario.values[scenario.sample]
        body = next(bodies()) if method == "POST" else None
        response = http.request(method, base + path, body=body, headers=headers)
        document = json.loads(response.data) if response.data else None
        problem = expect[letter](response, document, value)
        if problem:
            raise SystemExit(f"({letter}) {method} {path}: {problem}: {response.data[:300]!r}")


# --- Report -----------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    memory = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) / 1024 / 1024
    return (
        f"{model} ({platform.machine()}), nproc {os.cpu_count()}, {memory:.1f} GiB memory, "
        f"Python {platform.python_version()}"
    )


def database_description(vendor: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute("SHOW server_version")
            (version,) = cursor.fetchone()
            cursor.execute("SHOW shared_buffers")
            (buffers,) = cursor.fetchone()
            cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('records_record'))")
            (size,) = cursor.fetchone()
            return (
                f"PostgreSQL {version.split()[0]} on 127.0.0.1 (shared_buffers {buffers}; "
                f"records_record with its indexes {size})"
            )
        cursor.execute("SELECT sqlite_version()")
        (version,) = cursor.fetchone()
        size = Path(connection.settings_dict["NAME"]).stat().st_size / 1024 / 1024
        return f"SQLite {version} (WAL, a fresh file of {size:,.0f} MiB, no ANALYZE run)"


def ms_value(value: float | None) -> str:
    """fmt_ms without its unit."""
    return fmt_ms(value).removesuffix(" ms")


def span(values: list[float], text=lambda v: f"{v:.2f}") -> str:
    """ "x" or "x-y" of some measured values."""
    low, high = min(values), max(values)
    return text(low) if text(low) == text(high) else f"{text(low)}-{text(high)}"


def findings(
    vendor, rows, costs, plans, by_rating, count, created, profiled, scenarios, connections
) -> list[str]:
    out = []
    reads = [r for r in rows if r["letter"] != "e"]
    a = plans.get("a")
    if a:
        rating = scenarios["a"].values[scenarios["a"].sample]
        share = dict(RATINGS)[rating]
        out.append(
            f"- **EXPLAIN of (a)** (rating={rating}, {share} % of the records): "
            f"{verdict(vendor, a)}. {a['summary']}."
        )
        others = "; ".join(f"{rating}: {plan['ms']:.2f} ms" for rating, plan in by_rating.items())
        out.append(f"- The filtered page for each rating value, database time: {others}.")
        slow = [rating for rating, plan in by_rating.items() if plan["ms"] > 50]
        text = "\n".join(line for plan in by_rating.values() for line in plan["plan"])
        if slow:
            out.append(
                f"- **Slow:** the filtered page takes over 50 ms of database time for "
                f"{', '.join(slow)}. " + advice(vendor, text)
            )
        elif vendor == "postgresql" and "records_record_data_gin" not in text:
            removed = [
                re.search(r"Rows Removed by Filter: (\d+)", "\n".join(plan["plan"]))
                for plan in by_rating.values()
            ]
            counts = ", ".join(
                f"{rating} {match.group(1)}"
                for rating, match in zip(by_rating, removed, strict=True)
                if match
            )
            out.append(
                "- The planner does not use the GIN index for this page: it walks RecordID "
                f"order and drops the rows of other ratings (rows removed: {counts}), "
                f"{max(p['ms'] for p in by_rating.values()):.2f} ms at most; no index is "
                "missing for it."
            )
    sample_text = {
        "b": lambda v: f"since={v:,}",
        "d": lambda v: f"the cursor after RecordID {v:,}",
    }
    for letter, name in (("b", "since"), ("c", "first page"), ("d", "keyset")):
        if letter in plans:
            scenario = scenarios[letter]
            which = sample_text.get(letter)
            value = f", {which(scenario.values[scenario.sample])}" if which else ""
            out.append(
                f"- EXPLAIN of ({letter}) {name}{value}: {verdict_simple(plans[letter])}"
                f"{plans[letter]['summary']}."
            )
    warm = {costs[k]["queries"] for k in "abcd" if k in costs}
    cold = {costs[k]["cold_queries"] for k in "abcd" if k in costs}
    database = [plans[k]["ms"] for k in "abcd" if k in plans]
    in_proc = ", ".join(f"({k}) {costs[k]['ms']:.2f} ms" for k in "abcd" if k in costs)
    out.append(
        f"- **A read, in-process** (Django's test client, one thread, no HTTP, the "
        f"scenario's values in turn): {in_proc} per request. Warm it runs "
        f"{span(sorted(warm), str)} SQL statement(s): "
        + ", ".join(costs["c"]["warm"])
        + " — the page, whose rows are the record documents as JSON text written by the "
        "database (records/documents_sql.py), sent on as they are. With nothing remembered "
        f"(the surface's lookups and the API key are kept 0.5 s per process) it runs "
        f"{span(sorted(cold), str)}. The page's query itself takes {span(database)} ms "
        "(database ms)."
    )
    cores = os.cpu_count() or 1
    web = [r["cpu_ms"]["web"] for r in reads]
    parts = [f"the web server {span(web)} ms"]
    if vendor == "postgresql":
        parts.append(f"PostgreSQL {span([r['cpu_ms']['postgres'] for r in reads])} ms")
    if all(r["cpu_ms"]["client"] is not None for r in reads):
        parts.append(f"wrk {span([r['cpu_ms']['client'] for r in reads])} ms")
    total = [sum(v for v in r["cpu_ms"].values() if v is not None) for r in reads]
    out.append(
        f"- **Reads at c={connections}**: {span([r['rps'] for r in reads], lambda v: f'{v:,.0f}')}"
        f" req/s, p50 {span([r['p50'] for r in reads], ms_value)} ms, with the machine's "
        f"{cores} cores {span([r['busy'] * 100 for r in reads], lambda v: f'{v:.0f}')} % busy "
        f"(server, database and client share them). CPU per request: {', '.join(parts)}; "
        f"{span(total)} ms in all, i.e. at most ~{cores * 1000 / max(total):,.0f}-"
        f"{cores * 1000 / min(total):,.0f} req/s on these cores at that cost. CPU of "
        "neither (other processes, this script, interrupts): "
        f"{span([r['other_cores'] for r in reads])} cores. "
        f"Alone (one client, one request after the other): p50 "
        f"{span([r['alone']['p50'] for r in reads], ms_value)} ms, "
        f"{span([r['alone']['rps'] for r in reads], lambda v: f'{v:,.0f}')} req/s."
    )
    if vendor == "postgresql" and all(r["sessions"] for r in reads):
        out.append(
            f"- Sessions of the bench database sampled every 0.1 s during the reads at "
            f"c={connections}: "
            f"{span([r['sessions']['active'] for r in reads], lambda v: f'{v:.1f}')}"
            f" active on average, {span([r['sessions']['locked'] for r in reads])} waiting "
            "on a lock."
        )
    if profiled and profiled["total"]:
        share = {name: value / profiled["total"] for name, value in profiled.items()}
        out.append(
            f"- **Where a read's time goes** (cProfile of 100 requests of (c), in-process; "
            f"cProfile slows Python, not the database; shares of the whole request): "
            f"{share['query_records']:.0%} in `query_records`, which includes "
            f"{share['compile']:.0%} compiling its SELECT (`DocumentText.as_sql` "
            f"{share['document_sql']:.0%}), {share['execute']:.0%} in the database "
            "cursor's execute (the statement sent, run, its rows back) and "
            f"{share['cursor']:.0%} encrypting the next page's cursor (`_cursor`); the rest "
            "in authentication, the surface's checks, DRF and the response."
        )
    e = next((r for r in rows if r["letter"] == "e"), None)
    if e:
        names = costs["e"]["warm"]
        text = (
            f"- **Execute()** created {created:,} leads during the run at "
            f"{e['rps']:,.0f} req/s at c={connections} (p50 {fmt_ms(e['p50'])}; alone p50 "
            f"{fmt_ms(e['alone']['p50'])}, {e['alone']['rps']:,.0f} req/s). In-process one "
            f"create costs {costs['e']['ms']:.1f} ms; warm it runs {len(names)} SQL "
            f"statements ({costs['e']['cold_queries']} with nothing remembered): "
            + ", ".join(names)
            + "."
        )
        locked = next(
            (
                i
                for i, name in enumerate(names)
                if "submissioncounter" in name and "FOR UPDATE" in name
            ),
            None,
        )
        if locked is not None:
            after = names[locked + 2 :]  # the counter's UPDATE follows its lock
            text += (
                f" The record type's counter row is locked by statement {locked + 1} and "
                "held until the commit"
                + (f", {len(after)} statement(s) later ({', '.join(after)})" if after else "")
                + "."
            )
        if vendor == "sqlite":
            text += " SQLite admits one writing transaction at a time (BEGIN IMMEDIATE)."
        sessions = e.get("sessions")
        if sessions:
            waits = (
                ", ".join(f"{name} {n / sessions['samples']:.1f}" for name, n in sessions["waits"])
                or "none"
            )
            text += (
                f" Sessions sampled every 0.1 s during it: {sessions['active']:.1f} active "
                f"on average, {sessions['locked']:.2f} waiting on a lock (at least one in "
                f"{sessions['some_locked']:.0%} of samples); waits per sample: {waits}. "
                f"CPU per create: the web server {e['cpu_ms']['web']:.2f} ms, PostgreSQL "
                f"{e['cpu_ms']['postgres']:.2f} ms; the cores were {e['busy']:.0%} busy."
            )
        out.append(text)
    out.append(f"- Table: {count:,} leads loaded, plus those Execute() created.")
    return out


def verdict_simple(plan: dict) -> str:
    text = "\n".join(plan["plan"])
    if "Seq Scan" in text or re.search(r"\bSCAN records_record\b(?! USING)", text):
        return "**no index** — "
    return ""


def advice(vendor: str, text: str) -> str:
    if vendor == "postgresql":
        return (
            "Suggested (app code not changed here): an expression index on the value and "
            "RecordID, e.g. `CREATE INDEX ON records_record (record_type_id, (data->>'Rating'), "
            "id)` — the selectors would then need to filter with `data->>'Rating' = …` "
            "instead of `@>` for the planner to use it — or a generated column per "
            "filtered field."
        )
    return (
        "SQLite cannot use an index for `JSON_EXTRACT(data, …)` bound as a parameter; "
        "suggested (app code not changed here): an indexed generated column for the "
        "filtered field (see MEASURED.md, SQLite and JSON)."
    )


def target_verdict(row: dict, connections: int) -> str:
    """met / not met against the issue's targets (at TARGET_CONNECTIONS only)."""
    letter = row["letter"]
    if connections != TARGET_CONNECTIONS:
        return f"n/a (c={connections})"
    short = []
    if row["rps"] < TARGET_RPS[letter]:
        short.append(f"req/s < {TARGET_RPS[letter]}")
    limit = TARGET_ALONE_P50_MS.get(letter)
    if limit is not None and (row["alone"]["p50"] is None or row["alone"]["p50"] > limit):
        short.append(f"p50 alone > {limit:g} ms")
    return "met" if not short else f"**not met** ({'; '.join(short)})"


def table(rows: list[dict], costs: dict, plans: dict, connections: int) -> list[str]:
    lines = [
        f"| scenario | req/s c={connections} | p50 | p99 | non-2xx | alone: p50 · req/s "
        "| CPU ms/request: web · PostgreSQL · wrk | in-process ms · SQL warm (cold) "
        "| database ms | target |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        letter = row["letter"]
        cost = costs.get(letter)
        plan = plans.get(letter)
        alone = row["alone"]
        bad = str(row["non2xx"] + alone["non2xx"]) + (" **FAILED**" if row["failed"] else "")
        errors = row["socket_errors"] + alone["socket_errors"]
        if errors:
            bad += f" ({errors} socket errors)"
        cost_text = f"{cost['ms']:.2f} · {cost['queries']} ({cost['cold_queries']})" if cost else ""
        plan_text = f"{plan['ms']:.2f}" if plan else ""
        cpu = " · ".join(
            "-" if row["cpu_ms"][k] is None else f"{row['cpu_ms'][k]:.2f}"
            for k in ("web", "postgres", "client")
        )
        lines.append(
            f"| ({letter}) {SCENARIOS[letter]} | {row['rps']:,.0f} | {fmt_ms(row['p50'])} "
            f"| {fmt_ms(row['p99'])} | {bad} | {fmt_ms(alone['p50'])} · {alone['rps']:,.0f} "
            f"| {cpu} | {cost_text} | {plan_text} | {target_verdict(row, connections)} |"
        )
    lines += [
        "",
        f"Targets (the issue, on PostgreSQL): (a)-(d) ≥ {TARGET_RPS['a']} req/s at "
        f"c={TARGET_CONNECTIONS} and p50 alone ≤ {TARGET_ALONE_P50_MS['a']:g} ms; (e) ≥ "
        f'{TARGET_RPS["e"]} req/s at c={TARGET_CONNECTIONS}. "Alone": one client sending '
        "one request after the other (`wrk -t1 -c1`) for as long, right after the "
        f"c={connections} run. Non-2xx counts both runs.",
    ]
    return lines


def write_query_section(vendor: str, block: list[str]) -> None:
    """Replace this database's part of the query section, keeping the other database's,
    and the notes written by hand below KEPT in this database's part."""
    current = read_section("query")
    parts = {}
    for name in ("postgresql", "sqlite"):
        start, end = f"<!-- query:{name} -->", f"<!-- /query:{name} -->"
        old = (
            current.split(start, 1)[1].split(end, 1)[0]
            if start in current and end in current
            else None
        )
        if name == vendor:
            kept = ["", KEPT, old.split(KEPT, 1)[1].strip()] if old and KEPT in old else []
            parts[name] = "\n".join([start, *block, *kept, end])
        elif old is not None:
            parts[name] = start + old + end
    intro = [
        TITLE,
        "",
        "Measured by `make bench` (bench/query.py): a bench database with the Lead record "
        "type and a million leads loaded in bulk (COPY on PostgreSQL, executemany on "
        "SQLite), served by `manage.py serve` (Granian WSGI, 2 workers x 8 threads, "
        "`--reuse-port`, as `make run`) and loaded over loopback by a keep-alive client on "
        "the same cores. Every request authenticates with an API key; each read is a page "
        "of 100 record documents, and each request of a scenario asks for the next of its "
        "values in turn: (a) rating Hot, Warm, Cold; (b) 200 `since` values spread over the "
        "last 50,000 SubmissionIds (every page full); (d) 100 keyset cursors spread through "
        "the table. In-process: the same requests through Django's test client (one thread, "
        "no HTTP), and the SQL statements of one, warm and with nothing remembered (cold). "
        "Database ms: the query that reads the page, by EXPLAIN ANALYZE on PostgreSQL, "
        "timed directly on SQLite. CPU ms/request: CPU time of the web server's processes, "
        "of PostgreSQL's and of wrk during the run, over its requests. Ratings: Hot 20 %, "
        "Warm 35 %, Cold 45 % of the leads.",
    ]
    body = [*["\n".join(intro)], *[parts[n] for n in ("postgresql", "sqlite") if n in parts]]
    write_section("query", "\n\n".join(body))


# --- Main -------------------------------------------------------------------------------


def spread(low: int, high: int, count: int) -> list[int]:
    """`count` integers from low to high, evenly spaced (fewer if the range is short)."""
    if count <= 1 or high <= low:
        return [low]
    return sorted({low + (high - low) * i // (count - 1) for i in range(count)})


def make_scenarios(lead, first_id: int, count: int) -> dict[str, Scenario]:
    """The requests of each scenario, with the value each asks for. The loaded leads have
    RecordIDs first_id… and SubmissionIds 1…count, both without gaps."""
    from apps.records.selectors import query_records

    if count < 1000:
        raise SystemExit("--records: at least 1,000 (full pages from every value)")
    by_rating = f"{QUERY}/{quote('Leads by Rating')}"
    every = f"{QUERY}/{quote('All Leads')}"
    ratings = [name for name, _ in RATINGS]
    # Every `since` leaves at least 250 records after it: a full page and a Link.
    since = spread(max(0, count - SINCE_WINDOW), count - 250, SINCE_VALUES)
    # Cursors after positions from the first lead to 250 before the last.
    positions = spread(first_id, first_id + count - 250, CURSORS)
    cursors = [
        query_records(lead, filters=[("RecordID", "gte", position)], limit=1).next_cursor
        for position in positions
    ]
    return {
        "a": Scenario("a", "GET", [f"{by_rating}?rating={r}" for r in ratings], ratings),
        "b": Scenario("b", "GET", [f"{every}?since={v}" for v in since], since),
        "c": Scenario("c", "GET", [every], [None]),
        "d": Scenario(
            "d", "GET", [f"{every}?cursor={quote(c, safe='')}" for c in cursors], positions
        ),
        "e": Scenario("e", "POST", [EXECUTE], [None]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="write the section in BENCHMARKS.md")
    parser.add_argument("--records", type=int, default=1_000_000, help="leads to load")
    parser.add_argument("--sqlite", action="store_true", help="SQLite even if DATABASE_URL is set")
    parser.add_argument("--duration", type=int, default=8, help="seconds per scenario")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per scenario")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument(
        "--client", choices=("auto", "wrk", "python"), default="auto", help="load generator"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile (c) in-process")
    parser.add_argument("--keep", action="store_true", help="keep the database and var dir")
    parser.add_argument(
        "--replace", action="store_true", help="drop the database first if it exists"
    )
    args = parser.parse_args()
    begun = time.monotonic()
    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    elif client == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk, or --client python")

    database_url = None if args.sqlite else os.environ.get("DATABASE_URL") or None
    if database_url and not database_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit(
            f"DATABASE_URL must name a PostgreSQL database (or use --sqlite): {database_url}"
        )
    vendor = "postgresql" if database_url else "sqlite"
    var_dir = Path(tempfile.mkdtemp(prefix="flowsite-bench-query-"))
    port = free_port()
    env = instance_env(var_dir, port, database_url)
    marker = f"FLOWSITE_VAR_DIR={var_dir}".encode()
    base = f"http://127.0.0.1:{port}"
    log_path = var_dir / "serve.log"
    if database_url:
        create_postgres(database_url, args.replace)
    created_db = bool(database_url)
    os.environ.update(env)
    if not database_url:
        os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(ROOT))
    print(f"instance: {var_dir} (port {port}), {vendor}, {args.records:,} leads, client {client}")

    process = None
    failed = False
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection, connections

        t0 = time.monotonic()
        call_command("migrate", "--noinput", verbosity=0)
        call_command("collectstatic", "--noinput", verbosity=0)
        made = set_up()
        key, lead, user = made["key"], made["lead"], made["user"]
        print(f"migrated and set up in {time.monotonic() - t0:.1f} s")
        seconds = load(vendor, lead, user, args.records)
        print(
            f"loaded {args.records:,} leads in {seconds:.1f} s "
            f"({args.records / seconds:,.0f} records/s)"
        )
        from apps.records.models import Record

        ids = Record.objects.filter(record_type=lead).order_by("pk").values_list("pk", flat=True)
        first_id = ids.first()
        scenarios = make_scenarios(lead, first_id, args.records)

        def page(check):
            def expect(response, documents, value):
                if response.status != 200:
                    return f"status {response.status}"
                if not isinstance(documents, list) or len(documents) != 100:
                    return "not a page of 100"
                if "Link" not in response.headers:
                    return "no Link to the next page"
                return check(documents, value)

            return expect

        def only(documents, rating):
            found = {d["Rating"]["Selection"] for d in documents}
            return None if found == {rating} else f"ratings {sorted(found)}, asked {rating}"

        def first(name, expected):
            def check(documents, value):
                got, wanted = documents[0][name], expected(value)
                return None if got == wanted else f"first {name} {got}, expected {wanted}"

            return check

        expect = {
            "a": page(only),
            "b": page(first("SubmissionId", lambda since: since + 1)),
            "c": page(first("RecordID", lambda _: first_id)),
            "d": page(first("RecordID", lambda position: position + 1)),
            "e": lambda response, doc, _: (
                None if response.status == 201 else f"status {response.status}"
            ),
        }
        database = database_description(vendor)
        print(f"database: {database}")
        print("in-process (Django test client, one thread) and EXPLAIN:")
        costs, plans = in_process(key, scenarios, bodies(), vendor)
        by_rating = rating_plans(lead, vendor)
        profiled = profile(key, scenarios["c"].paths) if args.profile else None
        for letter, plan in plans.items():
            print(f"EXPLAIN ({letter}) {SCENARIOS[letter]}:")
            print("\n".join(f"    {line}" for line in plan["plan"]))
        for rating, plan in by_rating.items():
            print(f"  rating={rating}: {plan['summary']}")
        before = Record.objects.filter(record_type=lead).count()
        connections.close_all()

        process = start_server(env, log_path)
        print(f"`manage.py serve` healthy after {wait_healthy(base, process, log_path):.1f} s")
        check_answers(base, key, scenarios, expect)
        print("one request of each scenario answered as expected; loading")
        loads = [load_average()]
        rows = [
            measure(client, base, key, scenarios[letter], args, var_dir, marker, database_url)
            for letter in "abcde"
        ]
    except BaseException:
        failed = True
        if process is not None:
            print(f"--- serve log (last lines) ---\n{tail(log_path)}")
        raise
    finally:
        if process is not None:
            stop_server(process, marker)
            print("server stopped")
        with contextlib.suppress(Exception):
            connections.close_all()
        if failed and not args.keep:
            shutil.rmtree(var_dir, ignore_errors=True)
            if created_db:
                drop_postgres(database_url)

    created = Record.objects.filter(record_type=lead).count() - before
    connection.close()
    lines = table(rows, costs, plans, args.connections)
    notes = findings(
        vendor,
        rows,
        costs,
        plans,
        by_rating,
        args.records,
        created,
        profiled,
        scenarios,
        args.connections,
    )
    loads += [value for row in rows for value in (row["load"], row["load_alone"])]
    load_line = (
        f"Load average (1 min) before the runs {loads[0]:.2f}, after each scenario's "
        f"c={args.connections} and alone runs: "
        + "; ".join(f"({r['letter']}) {r['load']:.2f}, {r['load_alone']:.2f}" for r in rows)
        + "."
    )
    print("\n".join(lines))
    print(load_line)
    print("\n".join(notes))
    load_text = (
        f"{'wrk' if client == 'wrk' else 'Python threads (urllib3)'}, {args.connections} "
        f"connections, {args.warmup} s warm-up then {args.duration} s per scenario, then "
        f"one connection alone for {args.duration} s"
    )
    if args.write:
        write_query_section(
            vendor,
            [
                f"### {'PostgreSQL' if vendor == 'postgresql' else 'SQLite'}, "
                f"{args.records:,} leads",
                "",
                f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d')}.",
                "",
                f"Database: {database}. Loaded in {seconds:.0f} s "
                f"({args.records / seconds:,.0f} records/s).",
                "",
                f"Load: {load_text}; Granian WSGI "
                f"{env.get('WEB_WORKERS') or 2} workers x {env.get('WEB_THREADS') or 8} "
                f"threads; API-key throttle raised to {THROTTLE}.",
                "",
                load_line,
                "",
                *lines,
                "",
                *notes,
            ],
        )
    if args.keep:
        print(f"kept: {var_dir}" + (f" and {database_url}" if database_url else ""))
    else:
        shutil.rmtree(var_dir, ignore_errors=True)
        if created_db:
            drop_postgres(database_url)
            print(f"dropped {maintenance_url(database_url)[1]}")
    print(f"bench/query.py took {time.monotonic() - begun:.0f} s")
    if any(row["failed"] for row in rows):
        raise SystemExit("some scenario failed (non-2xx answers or socket errors)")


if __name__ == "__main__":
    main()
