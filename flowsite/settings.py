"""Flowsite settings: read from environment variables only.

Every variable is listed in README's configuration table. The defaults make a fresh
clone run on one machine (SQLite under var/, a file-based Celery broker); production
sets DEBUG=0, SECRET_KEY, FLOWSITE_API_KEY_SECRET, DATABASE_URL and a real broker.
"""

import contextlib
import os
import re
import secrets
import sys
import zoneinfo
from datetime import timedelta
from pathlib import Path
from typing import NoReturn

import dj_database_url
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("FLOWSITE_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def refuse(name: str, why: str) -> NoReturn:
    """A setting that cannot work: one line saying which and why, then exit (a traceback
    from the settings module told an operator nothing)."""
    sys.exit(f"flowsite: {name}={os.environ.get(name, '')!r} {why}")


def env_str(name: str, default: str = "") -> str:
    """The variable's value; unset or empty means the default, as for every env_* here."""
    return os.environ.get(name) or default


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    refuse(name, "is not a boolean: use 1/0, true/false.")


def env_int(name: str, default: int, *, low: int = 1, high: int | None = None) -> int:
    """A whole number of at least `low` (1 unless 0 means something) and at most `high`."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        refuse(name, "is not a whole number.")
    if number < low or (high is not None and number > high):
        refuse(
            name, f"is out of range: use {low} to {high}." if high else f"must be {low} or more."
        )
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_secret(name: str, *, min_bytes: int, allow_generated: bool) -> str:
    """A secret from the environment, else (for local use only) one kept in var/<name>.

    The generated file is created with O_EXCL so the web, worker and beat processes that
    start together agree on one value.
    """
    value = os.environ.get(name, "")
    where = "the environment"
    if not value:
        if not allow_generated:
            sys.exit(
                f"flowsite: {name} is not set. With DEBUG off it must come from the "
                f"environment (at least {min_bytes} bytes), for example: "
                f"export {name}=$(python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        path = VAR_DIR / name.lower()
        where = str(path)
        try:
            if not path.exists():
                # Written whole, then linked into place: a process starting at the same
                # moment either finds the complete file or creates it first.
                temporary = path.with_suffix(f".{os.getpid()}.tmp")
                temporary.write_text(secrets.token_urlsafe(48))
                temporary.chmod(0o600)
                with contextlib.suppress(FileExistsError):
                    os.link(temporary, path)
                temporary.unlink()
            value = path.read_text().strip()
        except OSError as exc:
            sys.exit(f"flowsite: cannot read or create {path} ({exc.strerror}); set {name}.")
    if len(value.encode()) < min_bytes:
        sys.exit(f"flowsite: {name} (from {where}) must be at least {min_bytes} bytes long.")
    return value


# --- Core -----------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_secret("SECRET_KEY", min_bytes=32, allow_generated=DEBUG)
FLOWSITE_API_KEY_SECRET = env_secret(
    "FLOWSITE_API_KEY_SECRET", min_bytes=32, allow_generated=DEBUG
).encode()

# Encrypts connection secrets at rest (Fernet). Comma-separated to rotate: the first key
# encrypts, every key decrypts.
FLOWSITE_ENCRYPTION_KEY = env_secret("FLOWSITE_ENCRYPTION_KEY", min_bytes=32, allow_generated=DEBUG)

HOST = env_str("HOST", "127.0.0.1")
PORT = env_int("PORT", 8000, high=65535)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Used by `manage.py serve` (make run): Granian worker processes, and the threads of each
# that run Django (Granian's --blocking-threads).
WEB_WORKERS = env_int("WEB_WORKERS", 2)
WEB_THREADS = env_int("WEB_THREADS", 8)

INSTALLED_APPS = [
    "apps.accounts.apps.FlowsiteAdminConfig",  # django.contrib.admin with our AdminSite
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_filters",
    "simple_history",
    "axes",
    "apps.core",
    "apps.accounts",
    "apps.flows",
    "apps.executions",
    "apps.records",
    "apps.surface",
    "apps.flowtests",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "apps.core.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.ApiProblemMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns an axes lockout into its answer
]

ROOT_URLCONF = "flowsite.urls"
WSGI_APPLICATION = "flowsite.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out sign-in unchecked
    "apps.accounts.backends.RoleBackend",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'flowsite.sqlite3'}")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60, low=0),
        conn_health_checks=True,
    )
}
DB_LOCK_TIMEOUT_MS = env_int("DB_LOCK_TIMEOUT_MS", 10000, low=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Flowsite's queries are short; PostgreSQL's JIT only adds compile time to them. A lock
    # held elsewhere or a server that does not answer a connection must not hold web
    # threads (an outside probe's calls waited 38 s behind a table lock): past these, 503
    # database-unavailable, to retry.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        options=f"-c jit=off -c lock_timeout={DB_LOCK_TIMEOUT_MS}",
        connect_timeout=env_int("DB_CONNECT_TIMEOUT", 5),
    )
    # Its health check looks at the socket before sending SELECT 1 (apps/core/postgresql_backend).
    DATABASES["default"]["ENGINE"] = "apps.core.postgresql_backend"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while the worker writes; IMMEDIATE transactions take
    # the write lock up front so concurrent writers wait (timeout) instead of failing
    # with "database is locked" half-way through a transaction.
    # Its writers of one process queue on a lock instead of SQLite's sleeping busy handler
    # (apps/core/sqlite_backend).
    DATABASES["default"]["ENGINE"] = "apps.core.sqlite_backend"
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        # A writer waits this long for the write lock, then fails: 503 to retry (0: a day).
        "timeout": (DB_LOCK_TIMEOUT_MS or 86_400_000) / 1000,
    }
    # A file (not :memory:) so that a real Celery worker started by a test sees the rows;
    # one per test session, so two sessions on one checkout do not share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and throttling -------------------------------------------------------------

REDIS_URL = env_str("REDIS_URL")
# A Redis that accepts connections but does not answer (paused, overloaded) must not hold a
# web thread: an outside probe's calls each waited ~5 s for the rate limit, /readyz 272 s.
REDIS_SOCKET_TIMEOUT = 2.0
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "socket_timeout": REDIS_SOCKET_TIMEOUT,
                "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

FLOWSITE_THROTTLE_RATES = {
    "key": env_str("FLOWSITE_THROTTLE_KEY", "6000/min"),
    "user": env_str("FLOWSITE_THROTTLE_USER", "1200/min"),
    "anon": env_str("FLOWSITE_THROTTLE_ANON", "60/min"),
    # Failed API keys, counted per client IP and per key prefix. A correct key is never
    # refused by it: the key is checked before the count.
    "auth_failure": env_str("FLOWSITE_THROTTLE_AUTH_FAILURE", "60/min"),
}
for _scope, _rate in FLOWSITE_THROTTLE_RATES.items():
    if not re.fullmatch(r"\d+/(s|sec|second|m|min|minute|h|hour|d|day)", _rate):
        sys.exit(
            f"flowsite: FLOWSITE_THROTTLE_{_scope.upper()}={_rate!r} is not a rate such as 60/min."
        )

# --- Request limits -------------------------------------------------------------------

FLOWSITE_MAX_BODY_BYTES = env_int("FLOWSITE_MAX_BODY_BYTES", 10 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = FLOWSITE_MAX_BODY_BYTES

# --- Auth, sessions -------------------------------------------------------------------

LOGIN_URL = "admin:login"
# Where a sign-in lands when its ?next= is refused (another site): the studio, not a 404.
LOGIN_REDIRECT_URL = "admin:index"
SESSION_COOKIE_HTTPONLY = True
# Scripts never read the CSRF cookie: the admin's forms carry the token (the endpoint
# panel's Try it reads it from the page), so a script on the origin cannot steal it.
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Admin sign-in lockout (django-axes): after FLOWSITE_LOGIN_FAILURE_LIMIT refused sign-ins
# of one username from one client IP, that pair is refused, whatever the password, until
# FLOWSITE_LOGIN_LOCKOUT_MINUTES after its last failure; other usernames and addresses are
# unaffected. Attempts live in the database (not the per-process cache) so every web
# process sees them; an admin unlocks by deleting them (Admin → Axes → Access attempts).
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = env_int("FLOWSITE_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("FLOWSITE_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "apps.accounts.lockout.client_ip"
AXES_LOCKOUT_CALLABLE = "apps.accounts.lockout.lockout_response"
AXES_RESET_ON_SUCCESS = True
# Attempts while locked out neither count nor extend the lockout.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# No row per successful sign-in: the attempts table is all the lockout needs.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False  # no banner on every start; failures are still logged (masked)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Internationalisation, static files -----------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
if TIME_ZONE not in zoneinfo.available_timezones():
    refuse("TIME_ZONE", "is not an IANA time zone name, such as UTC or Europe/Amsterdam.")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# With DEBUG on (local use, tests) files come straight from the app folders; with DEBUG
# off they are the compressed, hashed copies made by `collectstatic` (make run does it).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- REST framework, OpenAPI ----------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # API keys first: their authenticate_header() makes 401 (not 403) the answer
        # to an unauthenticated call.
        "apps.accounts.authentication.ApiKeyAuthentication",
        "apps.accounts.authentication.RegularSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["apps.core.throttling.CallerRateThrottle"],
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "apps.core.renderers.BrowsableAPIRenderer",
        "apps.core.renderers.ProblemJSONRenderer",
    ],
    "EXCEPTION_HANDLER": "apps.core.problems.exception_handler",
    # OPTIONS answers Allow and media types on every view; the shapes are in /api/schema/.
    "DEFAULT_METADATA_CLASS": "apps.core.metadata.ApiMetadata",
    # How many proxies in front of Flowsite append to X-Forwarded-For: the client IP used
    # for anonymous rate limits and recorded on anonymous runs. 0 trusts no header.
    "NUM_PROXIES": env_int("FLOWSITE_TRUSTED_PROXIES", 0, low=0),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Flowsite API",
    "DESCRIPTION": (
        "Flowsite's flow endpoints (PhixFlow trigger/poll, Axway flow-as-a-resource) and "
        "identity. "
        "Authenticate with `Authorization: Bearer <key>` (or PhixFlow's bare "
        "`Authorization: <key>`). Every error is an RFC 9457 `application/problem+json` "
        "document."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema is its reader's: endpoints whose permissions refuse the reader are left
    # out (the hooks do the same for flows and the surface). Anonymous readers get the flows
    # that allow anonymous calls. Swagger UI fetches it again with the key given to Authorize.
    "SERVE_PUBLIC": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True, "displayOperationId": True},
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # PhixFlow's /<instance>/api/1/… routes are the /api/1/… ones again: documented once.
    "PREPROCESSING_HOOKS": ["apps.executions.api.views.without_instance_routes"],
    # Every API-enabled flow appears in the schema with its own path (a governed catalog).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.flows.openapi.add_flow_operations",
        # …only those the reader may call (all of them for who may manage flows)…
        "apps.executions.openapi.only_callable_flows",
        # …and every REST-enabled operation and view of the surface.
        "apps.surface.openapi.add_surface_operations",
        # Path parameters described, with an example the docs put in the URL.
        "apps.core.openapi.describe_path_parameters",
        # Success answers are JSON (never problem+json); the documents as named components.
        "apps.core.openapi.json_success_answers",
        "apps.core.openapi.add_components",
    ],
}

# --- Flows: outbound HTTP, script sandbox, executions ---------------------------------

# Outbound calls to loopback, private, link-local, multicast and unspecified addresses are
# refused unless this is on (or the connection's own allowlist names the host).
FLOWSITE_ALLOW_PRIVATE_NETWORKS = env_bool("FLOWSITE_ALLOW_PRIVATE_NETWORKS", False)
FLOWSITE_OUTBOUND_TIMEOUT_MS = env_int("FLOWSITE_OUTBOUND_TIMEOUT_MS", 30_000)
FLOWSITE_OUTBOUND_MAX_RESPONSE_BYTES = env_int("FLOWSITE_OUTBOUND_MAX_RESPONSE_BYTES", 50 * 2**20)
FLOWSITE_SCRIPT_TIMEOUT_MS = env_int("FLOWSITE_SCRIPT_TIMEOUT_MS", 1000)
FLOWSITE_SCRIPT_MEMORY_MB = env_int("FLOWSITE_SCRIPT_MEMORY_MB", 64)
FLOWSITE_SANDBOX_PROCESSES = env_int("FLOWSITE_SANDBOX_PROCESSES", 2)
# Fair sandbox: one flow runs at most this many scripts at a time per web or worker process
# (half the sandbox processes, rounded up), so a flow whose scripts loop cannot starve the
# others; its further calls wait, and fail with 503 after FLOWSITE_SCRIPT_QUEUE_MS.
FLOWSITE_SCRIPT_SLOTS_PER_FLOW = env_int(
    "FLOWSITE_SCRIPT_SLOTS_PER_FLOW", (FLOWSITE_SANDBOX_PROCESSES + 1) // 2
)
FLOWSITE_SCRIPT_QUEUE_MS = env_int("FLOWSITE_SCRIPT_QUEUE_MS", 1000, low=0)
# A running execution whose process has not shown a sign of life for this long (it
# beats every few seconds) is recovered as failed: its worker was killed or crashed.
FLOWSITE_STALE_EXECUTION_SECONDS = env_int("FLOWSITE_STALE_EXECUTION_SECONDS", 120)
FLOWSITE_EXECUTION_RETENTION_DAYS = env_int("FLOWSITE_EXECUTION_RETENTION_DAYS", 30)
# Flows as APIs: the longest a caller may make a sync/auto call wait (?timeout= is capped),
# and how long an Idempotency-Key is remembered.
FLOWSITE_MAX_SYNC_TIMEOUT_MS = env_int("FLOWSITE_MAX_SYNC_TIMEOUT_MS", 300_000)
FLOWSITE_IDEMPOTENCY_TTL_HOURS = env_int("FLOWSITE_IDEMPOTENCY_TTL_HOURS", 24)
# Celigo's `…/download?signedURL=true`: how long the signed download URL it answers serves
# the download without an Authorization header (checked against its key on every use).
FLOWSITE_SIGNED_URL_TTL_SECONDS = env_int("FLOWSITE_SIGNED_URL_TTL_SECONDS", 300)
# PhixFlow prints its URLs with the instance's name in front of /api/1/
# (https://app.phixflow.com/phixflow/api/1/action/…): /<instance>/api/1/… routes like
# /api/1/… . Unlike the other variables, set and empty means "no such prefix".
FLOWSITE_PHIXFLOW_INSTANCE = os.environ.get("FLOWSITE_PHIXFLOW_INSTANCE", "phixflow").strip("/")
if FLOWSITE_PHIXFLOW_INSTANCE and not re.fullmatch(r"[A-Za-z0-9._~-]+", FLOWSITE_PHIXFLOW_INSTANCE):
    refuse(
        "FLOWSITE_PHIXFLOW_INSTANCE",
        "is not one URL path segment: use letters, digits, '.', '_', '~' or '-' (or leave "
        "it empty).",
    )
# A flow's answer larger than this fails its run (500 response-too-large): never sent,
# never stored.
FLOWSITE_MAX_RESPONSE_BYTES = env_int("FLOWSITE_MAX_RESPONSE_BYTES", 10 * 2**20)
# A recorded run (flow tests) keeps at most this much; a larger one cannot become a test.
FLOWSITE_TEST_CAPTURE_MAX_BYTES = env_int("FLOWSITE_TEST_CAPTURE_MAX_BYTES", 5 * 2**20, low=0)
# Sync callers of a queue-policy flow at its maximum wait in a web thread; at most this
# many per web process, the others get 503 with Retry-After.
FLOWSITE_MAX_WAITING_SYNC_CALLS = env_int("FLOWSITE_MAX_WAITING_SYNC_CALLS", 4, low=0)
# A queued run no worker has looked at for this long lost its task message: it is queued
# again once, then failed with the reason.
FLOWSITE_LOST_RUN_SECONDS = env_int("FLOWSITE_LOST_RUN_SECONDS", 300)

# --- Celery ---------------------------------------------------------------------------

BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    BROKER_DIR.mkdir(parents=True, exist_ok=True)
    # apps.core.broker (registered as `filesystem://` by flowsite.celery): kombu's
    # filesystem transport with atomic writes, messages kept until acknowledged (a killed
    # worker's are given back), unreadable files quarantined, and wake-up on arrival.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        # Broadcast (pidbox) messages; kombu's default is ./control in the working folder.
        "control_folder": str(VAR_DIR / "broker-control"),
        # inotify wakes a worker when a message arrives or a slot frees; this is only the
        # poll period where inotify is missing (not Linux), and a 1 s recheck otherwise.
        "polling_interval": 0.02,
        "idle_recheck": 1.0,
        # How often a worker gives back the messages held by a consumer that died.
        "recover_interval": 10.0,
    }
else:
    # An unacknowledged task is redelivered only after this long (Redis/SQS semantics):
    # keep it above the longest run; stale executions are recovered by our own task.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 2 * 3600)
    }
if CELERY_BROKER_URL.startswith("redis"):
    # A Redis broker that stops answering fails a publish (503, to retry) in seconds.
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        socket_timeout=REDIS_SOCKET_TIMEOUT, socket_connect_timeout=REDIS_SOCKET_TIMEOUT
    )
    CELERY_REDIS_SOCKET_TIMEOUT = REDIS_SOCKET_TIMEOUT
    CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = REDIS_SOCKET_TIMEOUT
    # A publish is tried twice (Celery's default is four times), so a caller waits ~4 s at
    # most for its 503 (an outside probe's waited 150 s, then ~20 s).
    CELERY_TASK_PUBLISH_RETRY_POLICY = {
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.2,
    }
    _default_result_backend = CELERY_BROKER_URL
else:
    _default_result_backend = f"file://{VAR_DIR / 'results'}"
    (VAR_DIR / "results").mkdir(exist_ok=True)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", _default_result_backend)
# Run status lives in our own Execution rows; Celery results are only for the rare task
# that opts in (ignore_result=False), such as the ping used by health checks and tests.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes the database connection before and after every task unless
# this is set: a new connection per run (about 0.5 ms on SQLite, several on PostgreSQL).
# Kept instead, and checked before each task like a request's (flowsite/celery.py).
CELERY_DB_REUSE_MAX = 1000
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_CONCURRENCY = env_int("CELERY_WORKER_CONCURRENCY", 2)
# Housekeeping (failing runs whose worker died, requeueing lost ones, purging old ones) has
# a queue of its own that every worker also consumes, taking from each queue in turn: it
# waits for one task at most, not behind a backlog of runs.
CELERY_TASK_DEFAULT_QUEUE = "celery"
HOUSEKEEPING_QUEUE = "housekeeping"
CELERY_TASK_QUEUES = (Queue(CELERY_TASK_DEFAULT_QUEUE), Queue(HOUSEKEEPING_QUEUE))
CELERY_TASK_ROUTES = {
    "flowsite.recover_stale_executions": {"queue": HOUSEKEEPING_QUEUE},
    "flowsite.purge_executions": {"queue": HOUSEKEEPING_QUEUE},
}
CELERY_BEAT_SCHEDULER = "apps.flows.beat:FlowScheduler"
# Beat writes each task's last run to the database after every task it sends (Celery's
# default: every 3 minutes), so the admin's home page sees a live beat (its check allows
# 120 s; beat looked dead a third of the time) and a restarted beat counts from there.
CELERY_BEAT_SYNC_EVERY = 1
CELERY_BEAT_SCHEDULE = {
    "recover-stale-executions": {"task": "flowsite.recover_stale_executions", "schedule": 30.0},
    "purge-old-executions": {"task": "flowsite.purge_executions", "schedule": 3600.0},
}
CELERY_TIMEZONE = TIME_ZONE

# --- Logging --------------------------------------------------------------------------

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    refuse("LOG_LEVEL", "is not one of: DEBUG, INFO, WARNING, ERROR, CRITICAL.")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.request": {"level": "ERROR"}},
}
