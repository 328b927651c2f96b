"""Records per second through the engine, in one process (run with `make bench`).

export (local server, 10,000 records in pages of 500) → [lookup export with
responseMapping, per record] → script → import (local server, batches of 100).
The real outbound client and script sandbox are used; the database is not involved.
"""

import json
import os
import platform
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sections import write_section

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flowsite.settings")
os.environ.setdefault("FLOWSITE_ALLOW_PRIVATE_NETWORKS", "1")

import django

django.setup()

from apps.flows.engine.context import RunContext  # noqa: E402
from apps.flows.engine.runner import run_flow  # noqa: E402
from apps.flows.engine.spec import (  # noqa: E402
    ExportSpec,
    FieldMapping,
    FlowSpec,
    ImportSpec,
    ResponseMapping,
    ScriptSpec,
    StepSpec,
)
from apps.flows.outbound import ConnectionConfig, get_client  # noqa: E402
from apps.flows.sandbox import get_pool  # noqa: E402

TOTAL = 10_000
PAGE = 500
BATCH = 100
SCRIPT = """
function main(ctx) {
  return ctx.records.map(function (r) {
    return {id: r.id, name: r.name.toUpperCase(), score: (r.score || 0) * 2, tier: r.tier};
  });
}
"""


class Handler(BaseHTTPRequestHandler):
    imported = 0

    def log_message(self, *args):
        pass

    def reply(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path, _, query = self.path.partition("?")
        params = dict(pair.split("=") for pair in query.split("&") if "=" in pair)
        if path == "/records":
            page, size = int(params["page"]), int(params["pageSize"])
            start = (page - 1) * size
            records = [
                {"id": i, "name": f"customer {i}", "score": i % 97}
                for i in range(start, min(start + size, TOTAL))
            ]
            self.reply(json.dumps({"data": records}).encode())
        else:  # /tier?id=
            self.reply(b'{"data": {"tier": "gold"}}')

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Handler.imported += len(json.loads(body))
        self.reply(b'{"ok": true}')


def step(kind, path, position, resource, **extras):
    return StepSpec(
        kind=kind, path=path, position=position, name=resource.name, resource=resource, **extras
    )


def build(connection: ConnectionConfig, with_lookup: bool) -> FlowSpec:
    generator = ExportSpec(
        id=1,
        name="records",
        connection=connection,
        relative_uri="/records",
        resource_path="data",
        paging="page",
        page_size=PAGE,
    )
    lookup = ExportSpec(
        id=2, name="tier", connection=connection, relative_uri="/tier?id={{record.id}}"
    )
    processors = []
    if with_lookup:
        processors.append(
            step(
                "export",
                "pageProcessors[0]",
                1,
                lookup,
                response_mapping=ResponseMapping(fields=(FieldMapping("data[0].tier", "tier"),)),
            )
        )
    processors += [
        step(
            "script",
            f"pageProcessors[{len(processors)}]",
            2,
            ScriptSpec(id=3, name="shape", source=SCRIPT),
        ),
        step(
            "import",
            f"pageProcessors[{len(processors) + 1}]",
            3,
            ImportSpec(
                id=4, name="sink", connection=connection, relative_uri="/import", batch_size=BATCH
            ),
        ),
    ]
    return FlowSpec(
        id=1,
        name="bench",
        generators=(step("export", "pageGenerators[0]", 0, generator),),
        processors=tuple(processors),
    )


def measure(connection, with_lookup: bool, total: int) -> float:
    spec = build(connection, with_lookup)
    ctx = RunContext(process_id="bench", http=get_client(), scripts=get_pool())
    Handler.imported = 0
    started = time.perf_counter()
    outcome = run_flow(spec, ctx, collect_output=False)
    elapsed = time.perf_counter() - started
    if outcome.status != "succeeded" or not outcome.num_success == total == Handler.imported:
        raise SystemExit(f"bench run went wrong: {outcome}, imported {Handler.imported}")
    return total / elapsed


def main() -> None:
    global TOTAL
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    connection = ConnectionConfig(key="bench", base_uri=f"http://127.0.0.1:{server.server_port}")
    get_pool().call(SCRIPT, "main", {"records": []})  # start the sandbox processes
    rows = []
    for label, with_lookup, total in (
        ("export → script → batched import", False, 10_000),
        ("export → per-record lookup + responseMapping → script → batched import", True, 2_000),
    ):
        TOTAL = total
        best = max(measure(connection, with_lookup, total) for _ in range(3))
        rows.append((label, total, best))
        print(f"{label}: {best:,.0f} records/s ({total:,} records, best of 3)")
    server.shutdown()
    cpu = platform.processor() or platform.machine()
    machine = f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"machine: {machine}")
    if "--write" in sys.argv:
        write(rows, machine)


def write(rows, machine: str) -> None:
    lines = [
        "## Engine",
        "",
        "Measured by `make bench` (bench/engine.py): one process, the real outbound HTTP client",
        "and script sandbox, a local threaded HTTP server on the same 2 cores (so the server's",
        "time is included). The database is not involved: this is the engine's own cost.",
        "",
        f"Machine: {machine}. Date: {time.strftime('%Y-%m-%d')}.",
        "",
        "| pipeline | records | records/s (best of 3) |",
        "|---|---|---|",
        *[f"| {label} | {total:,} | {rate:,.0f} |" for label, total, rate in rows],
        "",
    ]
    write_section("engine", "\n".join(lines))


if __name__ == "__main__":
    main()
