"""Settings: every value from an environment variable, every default working on a laptop.

One data dir (MLPLATFORM_DATA_DIR, default ./var/) holds everything local: the SQLite database,
the secret key, the local broker's folders, artifacts, staging and the local lake.

Importing this module has no side effects: it creates no folder and writes no file. The data dir,
the generated secret key and the broker's folders are made when Django starts (mlplatform.apps).
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from mlplatform.envvars import env_bool, env_host_ports, env_int, env_json_object, env_list, env_str, env_url
from mlplatform.queues import CONTROL_QUEUE, IO_QUEUE

BASE_DIR = Path(__file__).resolve().parent.parent

DATA_DIR = Path(env_str("MLPLATFORM_DATA_DIR", str(BASE_DIR / "var")))
if not DATA_DIR.is_absolute():
    DATA_DIR = BASE_DIR / DATA_DIR

# DJANGO_SECRET_KEY, or one generated into the data dir on first start (never in the repo): the
# start-up step (mlplatform.apps) writes that file if it is missing and sets SECRET_KEY from it.
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "")
SECRET_KEY_FILE = None if SECRET_KEY else DATA_DIR / "secret_key"
if SECRET_KEY_FILE is not None and SECRET_KEY_FILE.exists():
    SECRET_KEY = SECRET_KEY_FILE.read_text().strip()
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
# HTTPS, for production behind a proxy that terminates TLS (manage.py check --deploy says what is off).
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", False)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
if env_bool("DJANGO_BEHIND_HTTPS_PROXY", False):  # the proxy sets X-Forwarded-Proto: https (and strips it from clients)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI as static files: the docs need no CDN
    "django_htmx",
    "django_filters",
    "mlplatform",
    "builds",
    "tables",
    "batchjobs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "mlplatform.middleware.RefuseArtifactsOverTheLimit",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "mlplatform.middleware.RefuseNulInQueryParameters",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "mlplatform.urls"
WSGI_APPLICATION = "mlplatform.wsgi.application"

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
                "builds.context_processors.sandbox_warning",
            ],
        },
    },
]


def _databases() -> dict:
    url = env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}")
    try:
        # 0 (the default): a connection per request, closed after it. Kept open (DB_CONN_MAX_AGE=60),
        # a connection lasts as long as its thread: fine with gunicorn's fixed workers (make run's
        # manage.py serve: 2 processes of 4 threads; production's), not with a thread per request.
        config = dj_database_url.parse(
            url, conn_max_age=env_int("DB_CONN_MAX_AGE", 0, minimum=0), conn_health_checks=True
        )
    except Exception as exc:  # dj_database_url raises several types for bad URLs
        raise ImproperlyConfigured(f"DATABASE_URL={url!r} is not a database URL: {exc}") from None
    engine = config.get("ENGINE", "")
    if engine == "django.db.backends.sqlite3":
        # Web process and worker share the file: WAL, a busy timeout and immediate
        # transactions keep "database is locked" away.
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
        # A file, not :memory:, so a real worker process can see the test database.
        config["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
    elif engine != "django.db.backends.postgresql":
        raise ImproperlyConfigured(f"DATABASE_URL={url!r} must be a sqlite:/// or postgresql:// URL")
    return {"default": config}


DATABASES = _databases()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "builds:model-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"
WHITENOISE_USE_FINDERS = True  # no collectstatic needed for `make run`

# Uploads bigger than this go to a temporary file, never into memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
MAX_ARTIFACT_BYTES = env_int("MAX_ARTIFACT_MB", 500, minimum=1) * 1024 * 1024

# --- the platform ---------------------------------------------------------------------------
ARTIFACTS_URL = env_url("ARTIFACTS_URL", (DATA_DIR / "artifacts").as_uri(), schemes={"file", "s3"})
STAGING_URL = env_url("STAGING_URL", (DATA_DIR / "staging").as_uri(), schemes={"file", "s3"})
WAREHOUSE_CATALOGS = env_json_object("WAREHOUSE_CATALOGS", {"prod": (DATA_DIR / "lake").as_uri()})
WAREHOUSE_DEFAULT_CATALOG = env_str("WAREHOUSE_DEFAULT_CATALOG", next(iter(WAREHOUSE_CATALOGS)))
if WAREHOUSE_DEFAULT_CATALOG not in WAREHOUSE_CATALOGS:
    raise ImproperlyConfigured(
        f"WAREHOUSE_DEFAULT_CATALOG={WAREHOUSE_DEFAULT_CATALOG!r} is not one of WAREHOUSE_CATALOGS "
        f"({', '.join(WAREHOUSE_CATALOGS)})"
    )

MAX_INPUT_ROWS = env_int("MAX_INPUT_ROWS", 5_000_000, minimum=1)
MAX_CONCURRENT_JOBS = env_int("MAX_CONCURRENT_JOBS", 2, minimum=1)
PREDICT_TIMEOUT_S = env_int("PREDICT_TIMEOUT_S", 3600, minimum=1)
BUILD_TIMEOUT_S = env_int("BUILD_TIMEOUT_S", 600, minimum=1)
BUILD_MEMORY_MB = env_int("BUILD_MEMORY_MB", 4096, minimum=256)  # the model process verifying a build
JOB_TIMEOUT_S = env_int("JOB_TIMEOUT_S", 8 * 3600, minimum=1)
MAX_ROW_BYTES = env_int("MAX_ROW_BYTES", 100 * 1024 * 1024, minimum=1)
MAX_BATCH_ATTEMPTS = env_int("MAX_BATCH_ATTEMPTS", 3, minimum=1)
STAGING_RETENTION_H = env_int("STAGING_RETENTION_H", 24, minimum=0)
# A running batch holds a lease, renewed every quarter of it; the reaper takes back expired ones.
BATCH_LEASE_S = env_int("BATCH_LEASE_S", 60, minimum=2)
REAPER_INTERVAL_S = env_int("REAPER_INTERVAL_S", 15, minimum=1)
SCHEDULE_TICK_S = env_int("SCHEDULE_TICK_S", 30, minimum=1)  # how often beat looks for schedules' due times
# The `src` of the job events (402/400/401) recorded here: the event source number users' queries pick
# this platform's events out by.
EVENTS_SOURCE = env_int("EVENTS_SOURCE", 97, minimum=0, maximum=32767)
# Model output, tracebacks and logs are stored up to this many bytes, then "[truncated]".
LOG_CAP_BYTES = env_int("LOG_CAP_BYTES", 1024 * 1024, minimum=1024)
# Each predict worker process keeps one spare model process with numpy, pandas, pyarrow and
# scikit-learn already imported (about 150 MiB), so a job's first batch skips those imports.
MODEL_SPARE_PROCESS = env_bool("MODEL_SPARE_PROCESS", True)
# Model code runs in bubblewrap: auto (when bwrap is installed), required (refuse to run a model
# without it: production, CI), off.
MODEL_SANDBOX = env_str("MODEL_SANDBOX", "auto").lower()
if MODEL_SANDBOX not in ("auto", "required", "off"):
    raise ImproperlyConfigured(f"MODEL_SANDBOX must be auto, required or off, not {MODEL_SANDBOX!r}")
# Limits a model process cannot lift, besides its memory: its processes and threads (no fork bomb),
# and its disk: the largest file it may write and the size of its private /tmp (memory-backed).
MODEL_MAX_PROCESSES = env_int("MODEL_MAX_PROCESSES", 512, minimum=16)
MODEL_DISK_MB = env_int("MODEL_DISK_MB", 1024, minimum=16)

AWS_REGION = env_str("AWS_REGION", "")
CLOUDWATCH_LOG_GROUP = env_str("CLOUDWATCH_LOG_GROUP", "")

# Where users reach the web app: the links in notifications (sent by workers, not in a request).
PUBLIC_URL = env_url("PUBLIC_URL", "http://127.0.0.1:8000", schemes={"http", "https"}).rstrip("/")
# Sending one notification: each connect and read waits at most this long; a failed send is tried
# again after NOTIFY_RETRY_S, then twice that, then recorded as failed.
NOTIFY_TIMEOUT_S = env_int("NOTIFY_TIMEOUT_S", 5, minimum=1, maximum=60)
NOTIFY_RETRY_S = env_int("NOTIFY_RETRY_S", 30, minimum=1)
# Notifications go to public addresses only (no loopback, private, link-local, ... address: the
# workers sit next to Redis, the database and a cloud's metadata service), except to these hosts.
NOTIFY_ALLOWED_HOSTS = env_host_ports("NOTIFY_ALLOWED_HOSTS")

# --- Celery ---------------------------------------------------------------------------------
# The default broker is kombu's filesystem transport: no server, one machine. Production sets
# CELERY_BROKER_URL=redis://... (or amqp://...).
CELERY_BROKER_URL = env_url(
    "CELERY_BROKER_URL", "filesystem://localhost/", schemes={"filesystem", "redis", "rediss", "amqp", "pyamqp"}
)
if CELERY_BROKER_URL.startswith("filesystem"):
    # mlplatform.celery makes this scheme use mlplatform.broker (atomic writes); apps.py makes the folders.
    _broker_dir = DATA_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "polling_interval": 0.1,  # jobs start in well under a second
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # Redis redelivers an unacked task after this; it must outlast the longest task.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": PREDICT_TIMEOUT_S + 600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True  # the database is the source of truth, not a result backend
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = PREDICT_TIMEOUT_S + 300
CELERY_TASK_TIME_LIMIT = PREDICT_TIMEOUT_S + 600
# One queue per kind of work (mlplatform.queues); predict tasks go to their instance type's queue.
CELERY_TASK_DEFAULT_QUEUE = CONTROL_QUEUE
CELERY_TASK_ROUTES = {
    "batchjobs.admit_jobs": {"queue": CONTROL_QUEUE},
    "batchjobs.reap": {"queue": CONTROL_QUEUE},
    "batchjobs.schedules_tick": {"queue": CONTROL_QUEUE},
    "builds.reap": {"queue": CONTROL_QUEUE},
    "batchjobs.extract_job": {"queue": IO_QUEUE},
    "batchjobs.commit_job": {"queue": IO_QUEUE},
    "builds.verify_build": {"queue": IO_QUEUE},
    "batchjobs.send_notifications": {"queue": IO_QUEUE},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    name: {"task": name, "schedule": float(REAPER_INTERVAL_S), "options": {"expires": REAPER_INTERVAL_S}}
    for name in ("batchjobs.reap", "builds.reap")
}
# Schedules' due times: each tick claims them in the database, so two beats still run each once.
CELERY_BEAT_SCHEDULE["batchjobs.schedules_tick"] = {
    "task": "batchjobs.schedules_tick",
    "schedule": float(SCHEDULE_TICK_S),
    "options": {"expires": SCHEDULE_TICK_S},
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: an anonymous call is a 401 whose WWW-Authenticate says how to authenticate.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "mlplatform.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ML Platform — Batch Prediction API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # The interactive docs (Swagger UI) load from our static files: neither the server nor a user's
    # browser needs the internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "persistAuthorization": True, "displayRequestDuration": True},
    # Three models have a "status" with choices of their own: each its own enum in the schema.
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "batchjobs.choices.JobStatus",
        "BatchStatusEnum": "batchjobs.choices.BatchStatus",
        "BuildStatusEnum": "builds.choices.BuildStatus",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
