"""Kodo's settings: one flat module, read from the environment with django-environ.

Defaults need no server (SQLite, the Celery filesystem broker and the backup store all live in
var/). Production values come from the environment; README.md lists every variable.
"""

import os
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from kodo.envcheck import check_fernet_keys, check_secret_key, create_private_file, read_env_file

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# The development keys `make run` writes to var/kodo.env (with DEBUG=1) apply only to the commands
# that name the file in KODO_ENV_FILE (the Makefile's): a plain start never turns DEBUG on because
# `make run` once ran here. Real environment variables win over the file.
DEV_ENV_FILE = BASE_DIR / "var" / "kodo.env"
ENV_FILE = read_env_file(os.environ.get("KODO_ENV_FILE", ""), base_dir=BASE_DIR)

DEBUG = env.bool("DEBUG", default=False)
VAR_DIR = Path(env.str("KODO_VAR_DIR", default=str(BASE_DIR / "var")))
if not VAR_DIR.is_absolute():
    VAR_DIR = BASE_DIR / VAR_DIR
VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)  # owner only, when created here

_KEYS_HINT = (
    ""
    if ENV_FILE or not DEV_ENV_FILE.exists()
    else (
        " var/kodo.env (development keys) is read only when KODO_ENV_FILE=var/kodo.env is set, "
        "as `make run` does."
    )
)
SECRET_KEY = check_secret_key(env.str("SECRET_KEY", default=""), debug=DEBUG, hint=_KEYS_HINT)
KODO_ENCRYPTION_KEYS = check_fernet_keys(
    env.list("KODO_ENCRYPTION_KEYS", default=[]), debug=DEBUG, hint=_KEYS_HINT
)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
KODO_BASE_URL = env.str("KODO_BASE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_celery_beat",
    "kodo",
    "organizations",
    "o365",
    "schedules",
    "backups",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "kodo.middleware.ContentSecurityPolicyMiddleware",
    "kodo.middleware.RequestSizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "organizations.two_factor.TwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "kodo.middleware.AdminIdleTimeoutMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "kodo.urls"
WSGI_APPLICATION = "kodo.wsgi.application"

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
                "organizations.context_processors.navigation",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'kodo.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that a Celery worker started by the tests sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
    # IMMEDIATE: a transaction takes the write lock when it begins, so one that reads then writes
    # waits (up to `timeout` seconds) for another writer instead of failing "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # Owner only; SQLite gives its -wal and -shm files the database file's mode.
    create_private_file(DATABASES["default"]["NAME"])
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "kodo:home"
LOGOUT_REDIRECT_URL = "login"
PASSWORD_RESET_TIMEOUT = env.int("KODO_INVITATION_SECONDS", default=7 * 24 * 3600)

AXES_FAILURE_LIMIT = env.int("KODO_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# Lockouts are keyed on the account and the client's real address (organizations.audit.client_ip:
# behind KODO_PROXY_COUNT proxies, the X-Forwarded-For entry the nearest proxy wrote; entries to
# its left are what the client sent, and are ignored).
KODO_PROXY_COUNT = env.int("KODO_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "organizations.audit.client_ip"
# Password-reset emails asked for in the last hour, per client address and per account.
KODO_RESET_EMAILS_PER_ADDRESS = env.int("KODO_RESET_EMAILS_PER_ADDRESS", default=5)
KODO_RESET_EMAILS_PER_ACCOUNT = env.int("KODO_RESET_EMAILS_PER_ACCOUNT", default=3)
# An administrator's session ends after this long without a request.
KODO_ADMIN_IDLE_SECONDS = env.int("KODO_ADMIN_IDLE_SECONDS", default=8 * 3600)
for _name in ("KODO_PROXY_COUNT", "KODO_RESET_EMAILS_PER_ADDRESS", "KODO_RESET_EMAILS_PER_ACCOUNT"):
    if vars()[_name] < 0:
        raise ImproperlyConfigured(f"{_name} must be 0 or more.")
if KODO_ADMIN_IDLE_SECONDS < 60:
    raise ImproperlyConfigured("KODO_ADMIN_IDLE_SECONDS must be at least 60.")

# Two-factor sign-in (organizations/two_factor.py, django-otp): required of server administrators,
# organization admins and restore operators who sign in with a password (on unless DEBUG).
KODO_REQUIRE_TWO_FACTOR_FOR_ADMINS = env.bool(
    "KODO_REQUIRE_TWO_FACTOR_FOR_ADMINS", default=not DEBUG
)
OTP_TOTP_ISSUER = "Kodo"
# The admin never shows an authenticator app's key, its QR code, or recovery codes.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# Sign in with Microsoft (organizations/microsoft_signin.py; README "Sign in with Microsoft"): the
# server's multi-tenant app registration. Off while the client id is empty. Its credential is a
# client secret or a certificate (a PFX file and its password); the reply URL is
# KODO_BASE_URL/accounts/microsoft/callback/. KODO_MICROSOFT_SIGNIN_CA_FILE trusts another CA
# than the public ones (the demo's m365sim).
KODO_MICROSOFT_SIGNIN_CLIENT_ID = env.str("KODO_MICROSOFT_SIGNIN_CLIENT_ID", default="").strip()
KODO_MICROSOFT_SIGNIN_CLIENT_SECRET = env.str("KODO_MICROSOFT_SIGNIN_CLIENT_SECRET", default="")
KODO_MICROSOFT_SIGNIN_CERTIFICATE = env.str("KODO_MICROSOFT_SIGNIN_CERTIFICATE", default="")
KODO_MICROSOFT_SIGNIN_CERTIFICATE_PASSWORD = env.str(
    "KODO_MICROSOFT_SIGNIN_CERTIFICATE_PASSWORD", default=""
)
KODO_MICROSOFT_SIGNIN_AUTHORITY = env.str(
    "KODO_MICROSOFT_SIGNIN_AUTHORITY", default="https://login.microsoftonline.com"
).rstrip("/")
KODO_MICROSOFT_SIGNIN_CA_FILE = env.str("KODO_MICROSOFT_SIGNIN_CA_FILE", default="")
if KODO_MICROSOFT_SIGNIN_CA_FILE and not Path(KODO_MICROSOFT_SIGNIN_CA_FILE).is_absolute():
    KODO_MICROSOFT_SIGNIN_CA_FILE = str(BASE_DIR / KODO_MICROSOFT_SIGNIN_CA_FILE)
if KODO_MICROSOFT_SIGNIN_CLIENT_ID:
    import uuid as _uuid

    try:
        _uuid.UUID(KODO_MICROSOFT_SIGNIN_CLIENT_ID)
    except ValueError:
        raise ImproperlyConfigured(
            "KODO_MICROSOFT_SIGNIN_CLIENT_ID must be the app's Application (client) ID, a GUID."
        ) from None
    if not (KODO_MICROSOFT_SIGNIN_CLIENT_SECRET or KODO_MICROSOFT_SIGNIN_CERTIFICATE):
        raise ImproperlyConfigured(
            "Sign in with Microsoft needs KODO_MICROSOFT_SIGNIN_CLIENT_SECRET or "
            "KODO_MICROSOFT_SIGNIN_CERTIFICATE (a PFX file) besides "
            "KODO_MICROSOFT_SIGNIN_CLIENT_ID."
        )
    if KODO_MICROSOFT_SIGNIN_CERTIFICATE and not Path(KODO_MICROSOFT_SIGNIN_CERTIFICATE).is_file():
        raise ImproperlyConfigured(
            "KODO_MICROSOFT_SIGNIN_CERTIFICATE: there is no file "
            f"{KODO_MICROSOFT_SIGNIN_CERTIFICATE}."
        )
    # The demo's m365sim writes its CA when it first starts, after `make run` migrates.
    if (
        KODO_MICROSOFT_SIGNIN_CA_FILE
        and not DEBUG
        and not Path(KODO_MICROSOFT_SIGNIN_CA_FILE).is_file()
    ):
        raise ImproperlyConfigured(
            f"KODO_MICROSOFT_SIGNIN_CA_FILE: there is no file {KODO_MICROSOFT_SIGNIN_CA_FILE}."
        )
    if not KODO_MICROSOFT_SIGNIN_AUTHORITY.startswith("https://"):
        raise ImproperlyConfigured(
            "KODO_MICROSOFT_SIGNIN_AUTHORITY must be an https:// address, for example "
            "https://login.microsoftonline.com."
        )

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Uploads (KodoADSettings.json, PFX) are small; anything bigger is refused before a view sees it.
KODO_MAX_REQUEST_BYTES = env.int("KODO_MAX_REQUEST_BYTES", default=5 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

SECURE_COOKIES = env.bool("KODO_SECURE_COOKIES", default=not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_HSTS_SECONDS = 0 if DEBUG else env.int("KODO_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_SSL_REDIRECT = env.bool("KODO_SSL_REDIRECT", default=False)
if env.bool("KODO_BEHIND_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
# With DEBUG on, the error page hides every local and POST value whose name says secret/password.
DEFAULT_EXCEPTION_REPORTER_FILTER = "kodo.reporting.SecretHidingFilter"

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Kodo <kodo@localhost>")
EMAIL_TIMEOUT = 30  # seconds: a stuck mail server must not hold a maintenance worker

# Celery: the filesystem broker needs no server; production points CELERY_BROKER_URL at Redis.
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for folder in ("queue", "processed", "control"):
        (BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = env.str(
        "CELERY_RESULT_BACKEND", default=f"file://{VAR_DIR / 'celery-results'}"
    )
    (VAR_DIR / "celery-results").mkdir(parents=True, exist_ok=True)
else:
    # The visibility timeout must exceed the longest task, or Redis redelivers a running task.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 8 * 3600}
    if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        # kombu's Redis transport with a worker-killing defect worked around (kodo/broker.py)
        CELERY_BROKER_TRANSPORT = "kodo.broker:Transport"
    CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=CELERY_BROKER_URL)
CELERY_TASK_TIME_LIMIT = 6 * 3600
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 300
if CELERY_TASK_TIME_LIMIT >= CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 1e9):
    raise ImproperlyConfigured("The Redis visibility timeout must exceed the task time limit.")
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Kodo's own periodic work; the DatabaseScheduler copies these into its table at start.
CELERY_BEAT_SCHEDULE = {
    "notify-finished-firings": {
        "task": "schedules.tasks.notify_finished_firings",
        "schedule": 120.0,
    },
    "prune-backups": {
        "task": "backups.tasks.prune_organizations",
        "schedule": crontab(minute=30, hour=3),
    },
    "verify-backups": {
        "task": "backups.tasks.verify_stores",
        "schedule": crontab(minute=30, hour=4),
    },
    # The day's usage of each organization (UTC), for the monthly usage report (billing).
    "record-usage": {
        "task": "backups.tasks.record_usage",
        "schedule": crontab(minute=50, hour=23),
    },
    "weekly-summary-reports": {
        "task": "schedules.tasks.send_summary_reports",
        "schedule": crontab(minute=0, hour=7, day_of_week=1),
    },
    "recover-jobs": {
        "task": "kodo.tasks.recover_jobs",
        "schedule": float(env.int("KODO_RECOVERY_SECONDS", default=60)),
    },
}

# Graph retries: bounded, honouring Retry-After; the backoff applies when Microsoft gives none.
KODO_GRAPH_MAX_RETRIES = env.int("KODO_GRAPH_MAX_RETRIES", default=6)
KODO_GRAPH_BACKOFF_SECONDS = env.float("KODO_GRAPH_BACKOFF_SECONDS", default=1.0)
# Every outgoing request (token, Graph, download) waits at most this long to connect, and this
# long for each read; TEST CONNECTION, run by a web worker, ends within its own budget, all
# requests and retries included.
KODO_HTTP_CONNECT_TIMEOUT = env.float("KODO_HTTP_CONNECT_TIMEOUT", default=10.0)
KODO_HTTP_READ_TIMEOUT = env.float("KODO_HTTP_READ_TIMEOUT", default=60.0)
KODO_TEST_CONNECTION_SECONDS = env.float("KODO_TEST_CONNECTION_SECONDS", default=10.0)
for _name in (
    "KODO_HTTP_CONNECT_TIMEOUT",
    "KODO_HTTP_READ_TIMEOUT",
    "KODO_TEST_CONNECTION_SECONDS",
):
    if not 0 < vars()[_name] <= 3600:
        raise ImproperlyConfigured(f"{_name} must be more than 0 seconds and at most 3600.")

# Fair shares (kodo.fairness): at most this many running tasks of one organization per queue
# (0: no limit); a task over its share waits about KODO_SHARE_WAIT_SECONDS and tries again.
KODO_ORGANIZATION_SHARES = {"interactive": 1, "backup": 2, "restore": 1, "maintenance": 1}
KODO_ORGANIZATION_SHARES.update(
    env.dict("KODO_ORGANIZATION_SHARES", cast={"value": int}, default={})
)
KODO_SHARE_WAIT_SECONDS = env.float("KODO_SHARE_WAIT_SECONDS", default=15.0)
if (
    set(KODO_ORGANIZATION_SHARES) - {"interactive", "backup", "restore", "maintenance"}
    or min(KODO_ORGANIZATION_SHARES.values()) < 0
    or KODO_SHARE_WAIT_SECONDS <= 0
):
    raise ImproperlyConfigured(
        "KODO_ORGANIZATION_SHARES is queue=count pairs for interactive, backup, restore and "
        "maintenance, each 0 or more (e.g. interactive=1,backup=2); KODO_SHARE_WAIT_SECONDS "
        "must be more than 0."
    )

# Backups: parallel downloads per run; whole-file attempts before a file is recorded as failed;
# a running backup whose heartbeat is older than this may be taken over by a redelivered task.
KODO_BACKUP_DOWNLOAD_THREADS = env.int("KODO_BACKUP_DOWNLOAD_THREADS", default=8)
KODO_BACKUP_DOWNLOAD_ATTEMPTS = env.int("KODO_BACKUP_DOWNLOAD_ATTEMPTS", default=3)
# A user found without a OneDrive (it may be provisioned later) is asked again by the next
# configuration-wide or scheduled backup once its last check is older than this; 0: every time.
KODO_ONEDRIVE_RECHECK_HOURS = env.int("KODO_ONEDRIVE_RECHECK_HOURS", default=24)
if KODO_ONEDRIVE_RECHECK_HOURS < 0:
    raise ImproperlyConfigured("KODO_ONEDRIVE_RECHECK_HOURS must be 0 or more.")
# Jobs of every kind (kodo.jobs): a running job whose heartbeat is older than this lost its
# worker and is taken over. KODO_BACKUP_STALE_SECONDS is its former name, still read.
KODO_JOB_STALE_SECONDS = env.int(
    "KODO_JOB_STALE_SECONDS", default=env.int("KODO_BACKUP_STALE_SECONDS", default=120)
)
# Recovery (kodo.jobs.recover_jobs, every KODO_RECOVERY_SECONDS): a job whose worker went silent is
# resumed, up to KODO_JOB_MAX_ATTEMPTS claims; a queued job sent longer ago than
# KODO_JOB_RESEND_SECONDS (its message may be lost) is sent again.
KODO_RECOVERY_SECONDS = env.int("KODO_RECOVERY_SECONDS", default=60)
KODO_JOB_MAX_ATTEMPTS = env.int("KODO_JOB_MAX_ATTEMPTS", default=5)
KODO_JOB_RESEND_SECONDS = env.int("KODO_JOB_RESEND_SECONDS", default=900)
for _name in (
    "KODO_BACKUP_DOWNLOAD_THREADS",
    "KODO_BACKUP_DOWNLOAD_ATTEMPTS",
    "KODO_JOB_STALE_SECONDS",
    "KODO_RECOVERY_SECONDS",
    "KODO_JOB_MAX_ATTEMPTS",
    "KODO_JOB_RESEND_SECONDS",
):
    if vars()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1.")

# Restore (backups/restore/): parallel uploads per job, whole-file attempts before a file fails,
# and the upload session's fragment size (a multiple of 320 KiB below 60 MiB; 10 MiB default).
KODO_RESTORE_UPLOAD_THREADS = env.int("KODO_RESTORE_UPLOAD_THREADS", default=4)
KODO_RESTORE_UPLOAD_ATTEMPTS = env.int("KODO_RESTORE_UPLOAD_ATTEMPTS", default=3)
KODO_RESTORE_FRAGMENT_BYTES = env.int("KODO_RESTORE_FRAGMENT_BYTES", default=10 * 1024 * 1024)
if min(KODO_RESTORE_UPLOAD_THREADS, KODO_RESTORE_UPLOAD_ATTEMPTS) < 1:
    raise ImproperlyConfigured(
        "KODO_RESTORE_UPLOAD_THREADS and KODO_RESTORE_UPLOAD_ATTEMPTS must be at least 1."
    )
if not (0 < KODO_RESTORE_FRAGMENT_BYTES < 60 * 1024 * 1024) or KODO_RESTORE_FRAGMENT_BYTES % 327680:
    raise ImproperlyConfigured(
        "KODO_RESTORE_FRAGMENT_BYTES must be a multiple of 327680 (320 KiB) below 60 MiB, "
        "e.g. 10485760 (10 MiB)."
    )

# Retention (manage.py prune and the nightly prune task): the policy for users no enabled schedule
# covers, and how long an unreferenced chunk waits before it leaves the store. The wait must
# exceed the longest backup task: a backup stores chunks before it records the versions using them.
KODO_DEFAULT_KEEP_VERSIONS = env.int("KODO_DEFAULT_KEEP_VERSIONS", default=30)
KODO_DEFAULT_KEEP_DELETED_DAYS = env.int("KODO_DEFAULT_KEEP_DELETED_DAYS", default=365)
KODO_PRUNE_GRACE_HOURS = env.int("KODO_PRUNE_GRACE_HOURS", default=24)
if KODO_DEFAULT_KEEP_VERSIONS < 1 or KODO_DEFAULT_KEEP_DELETED_DAYS < 1:
    raise ImproperlyConfigured(
        "KODO_DEFAULT_KEEP_VERSIONS and KODO_DEFAULT_KEEP_DELETED_DAYS must be at least 1."
    )
if KODO_PRUNE_GRACE_HOURS * 3600 <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        f"KODO_PRUNE_GRACE_HOURS must exceed the backup task time limit "
        f"({CELERY_TASK_TIME_LIMIT // 3600} hours)."
    )

KODO_STORE_URL = env.str("KODO_STORE_URL", default=str(VAR_DIR / "store"))
KODO_STORE_PACK_BELOW = env.int("KODO_STORE_PACK_BELOW", default=1 << 20)
# The nightly verification re-reads this fraction of each organization's chunks (all on Sundays).
KODO_VERIFY_SAMPLE = env.float("KODO_VERIFY_SAMPLE", default=0.05)
if not 0 < KODO_VERIFY_SAMPLE <= 1:
    raise ImproperlyConfigured(
        "KODO_VERIFY_SAMPLE must be a fraction above 0 and at most 1, e.g. 0.05."
    )

# Shared across processes and machines: throttling state (Retry-After per configuration) and
# rate limits. Redis in production (KODO_CACHE_URL=redis://host:6379/2, a database of its own:
# the tests clear it); files in var/ on one machine otherwise.
CACHES = {"default": env.cache_url("KODO_CACHE_URL", default=f"filecache://{VAR_DIR / 'cache'}")}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}
