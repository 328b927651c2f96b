"""Query() and Execute() over HTTP on a table of a million leads (make bench).

A bench database is created (PostgreSQL when DATABASE_URL names one, else SQLite in a
temporary FLOWSITE_VAR_DIR), migrated, and given the Lead record type (Company, Contact,
Email, Phone, Lead Source, Rating Hot/Warm/Cold, Notes) with --records rows loaded in bulk
(COPY on PostgreSQL, executemany on SQLite, with a matching SubmissionCounter: not through
the per-record services), the surface switched on, an integration account with an API key
(use_api_key, query_views, execute_operations), the views "Leads by Rating" (Rating eq
parameter `rating`) and "All Leads", and the operation "Register Lead" (create).

`manage.py serve` then serves it on a free port and a keep-alive client (wrk when
installed, else Python threads) loads it over loopback, a page of 100 each:

  (a) Leads by Rating?rating=Hot          the JSON filter (`data @> …` on PostgreSQL)
  (b) All Leads?since=<max - 5000>        incremental sync near the end
  (c) All Leads                           the first page
  (d) All Leads?cursor=<half-way>         a page deep in, by keyset cursor
  (e) POST Execute() Register Lead        creates a lead (a new ExternalTransactionId each)

Before serving, each query's SQL is captured from one in-process request and EXPLAINed
(EXPLAIN ANALYZE on PostgreSQL, EXPLAIN QUERY PLAN on SQLite), and each request is timed
in-process through Django's test client. The bench database is dropped at the end
unless --keep; an existing database is never dropped unless --replace.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/benchquery \\
        .venv/bin/python bench/query.py [--write] [--records 1000000] [--keep]
    .venv/bin/python bench/query.py --sqlite --records 200000 --write
"""

import argparse
import concurrent.futures
import contextlib
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
    fmt_ms,
    free_port,
    parse_wrk,
    percentile,
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

SCENARIOS = {  # letter: description (the paths are made once the data is loaded)
    "a": "Leads by Rating?rating=Hot: JSON filter, first page",
    "b": "All Leads?since=max-5000: incremental sync near the end",
    "c": "All Leads: first page",
    "d": "All Leads?cursor=…: a page half-way in (keyset)",
    "e": "Execute() Register Lead: POST, creates a lead",
}


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


def in_process(key: str, paths: dict, bodies, vendor: str) -> tuple[dict, dict]:
    """Per scenario: ms per request through Django's test client (one thread, no HTTP),
    SQL statements, and the plan of the query that reads the page."""
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {key}")
    costs, plans = {}, {}
    for letter, (method, path) in paths.items():
        status, statements = capture_sql(client, method, path, next(bodies))
        expected = 201 if method == "POST" else 200
        if status != expected:
            raise SystemExit(f"({letter}) in-process answered {status}, expected {expected}")
        query = main_query(statements)
        if query and method == "GET":
            plans[letter] = explain(vendor, *query)
        for _ in range(10):
            send(client, method, path, next(bodies))
        n = 100 if method == "GET" else 50
        started = time.perf_counter()
        for _ in range(n):
            send(client, method, path, next(bodies))
        costs[letter] = {
            "ms": (time.perf_counter() - started) * 1000 / n,
            "queries": len(statements),
        }
        print(
            f"  in-process ({letter}): {costs[letter]['ms']:.2f} ms/request, "
            f"{len(statements)} SQL statements"
            + (f"; query {plans[letter]['ms']:.2f} ms" if letter in plans else "")
        )
    return costs, plans


def profile(key: str, path: str, top: int = 25) -> dict[str, float]:
    """cProfile of 100 requests of one read, in-process (--profile)."""
    import cProfile
    import io
    import pstats

    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {key}")
    client.get(path)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(100):
        client.get(path)
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

    total = cumulative("get", "django/test/client.py")
    fetch = cumulative("query_records", "apps/records/selectors.py")
    documents = cumulative("record_document", "apps/records/selectors.py")
    return {"total": total, "query_records": fetch, "record_document": documents}


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


def wrk_run(wrk: str, url: str, key: str, method: str, connections: int, seconds: int, work: Path):
    cmd = [wrk, f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    cmd += ["--timeout", "10s", "-H", f"Authorization: Bearer {key}"]
    if method == "POST":
        body = json.dumps({**BODY, "ExternalTransactionId": "bench-%s-%d-%d"})
        script = work / "execute.lua"
        script.write_text(f"BODY = {json.dumps(body)}\n" + EXECUTE_LUA)
        cmd += ["-s", str(script), url, "--", secrets.token_hex(4)]
    else:
        cmd.append(url)
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode:
        raise SystemExit(f"wrk failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return parse_wrk(result.stdout)


def python_run(url: str, key: str, method: str, connections: int, seconds: int) -> dict:
    """The same as wrk with a thread per connection (urllib3, keep-alive)."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    made = bodies()
    deadline = time.monotonic() + seconds

    def client(_):
        pool = urllib3.HTTPConnectionPool(
            parts.hostname, parts.port, maxsize=1, retries=False, timeout=10
        )
        latencies, bad, errors = [], 0, 0
        while time.monotonic() < deadline:
            body = next(made) if method == "POST" else None
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


def measure(client: str, base: str, key: str, scenario, args, work: Path) -> dict:
    letter, method, path = scenario
    url = base + path

    def once(seconds):
        if client == "wrk":
            return wrk_run(shutil.which("wrk"), url, key, method, args.connections, seconds, work)
        return python_run(url, key, method, args.connections, seconds)

    once(args.warmup)
    result = once(args.duration)
    result.update(letter=letter, failed=bool(result["non2xx"] or result["socket_errors"]))
    print(
        f"({letter}) c={args.connections}: {result['rps']:,.0f} req/s, p50 "
        f"{fmt_ms(result['p50'])}, p99 {fmt_ms(result['p99'])}, non-2xx {result['non2xx']}, "
        f"socket errors {result['socket_errors']}" + ("  ** FAILED **" if result["failed"] else "")
    )
    return result


def check_answers(base: str, key: str, paths: dict, expect: dict) -> None:
    """Each request once over HTTP, and its answer checked."""
    http = urllib3.PoolManager(retries=False, timeout=30)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    for letter, (method, path) in paths.items():
        body = next(bodies()) if method == "POST" else None
        response = http.request(method, base + path, body=body, headers=headers)
        document = json.loads(response.data) if response.data else None
        problem = expect[letter](response, document)
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


def findings(vendor, rows, costs, plans, by_rating, count, created, profiled) -> list[str]:
    out = []
    a = plans.get("a")
    if a:
        out.append(
            f"- **EXPLAIN of (a)** (rating=Hot, {RATINGS[0][1]} % of the records): "
            f"{verdict(vendor, a)}. {a['summary']}."
        )
        others = "; ".join(f"{rating}: {plan['ms']:.2f} ms" for rating, plan in by_rating.items())
        out.append(f"- The same page for each rating value, database time: {others}.")
        slow = [rating for rating, plan in by_rating.items() if plan["ms"] > 50]
        text = "\n".join(line for plan in by_rating.values() for line in plan["plan"])
        if slow:
            out.append(
                f"- **Slow:** the filtered page takes over 50 ms of database time for "
                f"{', '.join(slow)}. " + advice(vendor, text)
            )
        elif vendor == "postgresql" and "records_record_data_gin" not in text:
            out.append(
                "- The planner does not use the GIN index for this page, rightly: walking "
                "RecordID order and dropping the non-matching rows finds the first 101 "
                "matches after a few hundred rows, where the GIN index would return every "
                "match of the whole table to be sorted. No index is missing for it."
            )
    for letter, name in (("b", "since"), ("c", "first page"), ("d", "deep cursor")):
        if letter in plans:
            out.append(
                f"- EXPLAIN of ({letter}) {name}: {verdict_simple(plans[letter])}"
                f"{plans[letter]['summary']}."
            )
    slowest = max((r for r in rows if r["letter"] != "e"), key=lambda r: r["p50"] or 0)
    reads = ", ".join(f"({k}) {costs[k]['ms']:.1f} ms" for k in "abcd" if k in costs)
    text = (
        f"- Of the reads, ({slowest['letter']}) is the slowest at p50 "
        f"{fmt_ms(slowest['p50'])}. In-process the reads cost {reads} per request (one "
        "thread, no HTTP)"
    )
    if all(plans[k]["ms"] < 0.3 * costs[k]["ms"] for k in plans):
        text += (
            ", of which the database query is under 30 %: most of a read is Django, DRF, "
            "authentication and building 100 record documents."
        )
    else:
        text += "; the database query is a large part of it (see database ms)."
    out.append(text)
    if profiled and profiled["total"]:
        share = {name: value / profiled["total"] for name, value in profiled.items()}
        out.append(
            f"- **Where a read's time goes** (cProfile of 100 requests of (c), in-process): "
            f"{share['query_records']:.0%} in `query_records` (of which the SQL is the "
            "database ms above; the rest is the ORM building 101 Records, each with its "
            "record type and two users from select_related), "
            f"{share['record_document']:.0%} in `record_document` (100 documents of 7 fields), "
            "the rest in authentication, the surface checks, DRF and rendering the JSON."
        )
    e = next((r for r in rows if r["letter"] == "e"), None)
    if e:
        writer = (
            "each create locks the record type's SubmissionCounter row (SELECT … FOR UPDATE) "
            "until it commits, so creates of one record type are serialised"
            if vendor == "postgresql"
            else "SQLite lets one writer in at a time (BEGIN IMMEDIATE), so creates are serialised"
        )
        out.append(
            f"- **Execute()** created {created:,} leads during the run at "
            f"{e['rps']:,.0f} req/s (p50 {fmt_ms(e['p50'])}): {writer}; "
            f"in-process one create costs {costs['e']['ms']:.1f} ms and "
            f"{costs['e']['queries']} SQL statements (receipt, counter, record)."
        )
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


def table(rows: list[dict], costs: dict, plans: dict, paths: dict) -> list[str]:
    lines = [
        "| scenario | req/s | p50 | p99 | non-2xx | in-process ms/request · SQL | database ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        letter = row["letter"]
        cost = costs.get(letter)
        plan = plans.get(letter)
        bad = str(row["non2xx"]) + (" **FAILED**" if row["failed"] else "")
        if row["socket_errors"]:
            bad += f" ({row['socket_errors']} socket errors)"
        cost_text = f"{cost['ms']:.2f} · {cost['queries']}" if cost else ""
        plan_text = f"{plan['ms']:.2f}" if plan else ""
        lines.append(
            f"| ({letter}) {SCENARIOS[letter]} | {row['rps']:,.0f} | {fmt_ms(row['p50'])} "
            f"| {fmt_ms(row['p99'])} | {bad} | {cost_text} | {plan_text} |"
        )
    return lines


def write_query_section(vendor: str, block: list[str]) -> None:
    """Replace this database's part of the query section, keeping the other database's."""
    current = read_section("query")
    parts = {}
    for name in ("postgresql", "sqlite"):
        start, end = f"<!-- query:{name} -->", f"<!-- /query:{name} -->"
        if name == vendor:
            parts[name] = "\n".join([start, *block, end])
        elif start in current and end in current:
            parts[name] = start + current.split(start, 1)[1].split(end, 1)[0] + end
    intro = [
        TITLE,
        "",
        "Measured by `make bench` (bench/query.py): a bench database with the Lead record "
        "type and a million leads loaded in bulk (COPY on PostgreSQL, executemany on "
        "SQLite), served by `manage.py serve` (Granian WSGI, 2 workers x 8 threads, "
        "`--reuse-port`, as `make run`) and loaded over loopback by a keep-alive client on "
        "the same cores. Every request authenticates with an API key; each read is a page "
        "of 100 record documents. In-process: the same request through Django's test client "
        "(one thread, no HTTP), and the SQL statements of one. Database ms: the query that "
        "reads the page, by EXPLAIN ANALYZE on PostgreSQL, timed directly on SQLite. "
        "Ratings: Hot 20 %, Warm 35 %, Cold 45 % of the leads.",
    ]
    body = [*["\n".join(intro)], *[parts[n] for n in ("postgresql", "sqlite") if n in parts]]
    write_section("query", "\n\n".join(body))


# --- Main -------------------------------------------------------------------------------


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
        from apps.records.selectors import query_records

        ids = Record.objects.filter(record_type=lead).order_by("pk").values_list("pk", flat=True)
        first_id = ids.first()
        middle = first_id + args.records // 2
        cursor = query_records(lead, filters=[("RecordID", "gte", middle)], limit=1).next_cursor
        since = max(0, args.records - 5000)
        paths = {
            "a": ("GET", f"{QUERY}/{quote('Leads by Rating')}?rating=Hot"),
            "b": ("GET", f"{QUERY}/{quote('All Leads')}?since={since}"),
            "c": ("GET", f"{QUERY}/{quote('All Leads')}"),
            "d": ("GET", f"{QUERY}/{quote('All Leads')}?cursor={cursor}"),
            "e": ("POST", EXECUTE),
        }

        def page(check):
            def expect(response, documents):
                if response.status != 200:
                    return f"status {response.status}"
                if not isinstance(documents, list) or len(documents) != 100:
                    return "not a page of 100"
                if "Link" not in response.headers:
                    return "no Link to the next page"
                return check(documents)

            return expect

        expect = {
            "a": page(
                lambda docs: (
                    None
                    if {d["Rating"]["Selection"] for d in docs} == {"Hot"}
                    else "not only Hot leads"
                )
            ),
            "b": page(
                lambda docs: (
                    None
                    if docs[0]["SubmissionId"] == since + 1
                    else f"first SubmissionId {docs[0]['SubmissionId']}, expected {since + 1}"
                )
            ),
            "c": page(
                lambda docs: None if docs[0]["RecordID"] == first_id else "not the first lead"
            ),
            "d": page(
                lambda docs: (
                    None
                    if docs[0]["RecordID"] == middle + 1
                    else f"first RecordID {docs[0]['RecordID']}, expected {middle + 1}"
                )
            ),
            "e": lambda response, doc: (
                None if response.status == 201 else f"status {response.status}"
            ),
        }
        database = database_description(vendor)
        print(f"database: {database}")
        print("in-process (Django test client, one thread) and EXPLAIN:")
        costs, plans = in_process(key, paths, bodies(), vendor)
        by_rating = rating_plans(lead, vendor)
        profiled = profile(key, paths["c"][1]) if args.profile else None
        for letter, plan in plans.items():
            print(f"EXPLAIN ({letter}) {SCENARIOS[letter]}:")
            print("\n".join(f"    {line}" for line in plan["plan"]))
        for rating, plan in by_rating.items():
            print(f"  rating={rating}: {plan['summary']}")
        before = Record.objects.filter(record_type=lead).count()
        connections.close_all()

        process = start_server(env, log_path)
        print(f"`manage.py serve` healthy after {wait_healthy(base, process, log_path):.1f} s")
        check_answers(base, key, paths, expect)
        print("each request answered as expected once; loading")
        rows = [
            measure(client, base, key, (letter, *paths[letter]), args, var_dir)
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
    lines = table(rows, costs, plans, paths)
    notes = findings(vendor, rows, costs, plans, by_rating, args.records, created, profiled)
    print("\n".join(lines))
    print("\n".join(notes))
    load_text = (
        f"{'wrk' if client == 'wrk' else 'Python threads (urllib3)'}, {args.connections} "
        f"connections, {args.warmup} s warm-up then {args.duration} s per scenario"
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
