"""Kodo's settings: one flat module, read from the environment with django-environ.

Defaults need no server (SQLite, the Celery filesystem broker and the backup store all live in
var/). Production values come from the environment; README.md lists every variable.
"""

from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from kodo.envcheck import check_fernet_keys, check_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# `make run` writes development keys here once; real environment variables win over the file.
environ.Env.read_env(BASE_DIR / "var" / "kodo.env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
VAR_DIR = Path(env.str("KODO_VAR_DIR", default=str(BASE_DIR / "var")))
if not VAR_DIR.is_absolute():
    VAR_DIR = BASE_DIR / VAR_DIR
VAR_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = check_secret_key(env.str("SECRET_KEY", default=""), debug=DEBUG)
KODO_ENCRYPTION_KEYS = check_fernet_keys(env.list("KODO_ENCRYPTION_KEYS", default=[]), debug=DEBUG)

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
    "django.contrib.messages.middleware.MessageMiddleware",
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
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
PASSWORD_RESET_TIMEOUT = env.int("KODO_INVITATION_SECONDS", default=7 * 24 * 3600)

AXES_FAILURE_LIMIT = env.int("KODO_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_IPWARE_PROXY_COUNT = env.int("KODO_PROXY_COUNT", default=0)
AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]

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

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Kodo <kodo@localhost>")

# Celery: the filesystem broker needs no server; production points CELERY_BROKER_URL at Redis.
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for folder in ("queue", "processed", "control"):
        (BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
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
    CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=CELERY_BROKER_URL)
CELERY_TASK_TIME_LIMIT = 6 * 3600
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 300
if CELERY_TASK_TIME_LIMIT >= CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 1e9):
    raise ImproperlyConfigured("The Redis visibility timeout must exceed the task time limit.")
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Kodo's own periodic work; the DatabaseScheduler copies these into its table at start.
CELERY_BEAT_SCHEDULE = {
    "notify-finished-firings": {"task": "schedules.tasks.notify_finished_firings",
                                "schedule": 120.0},
    "prune-backups": {"task": "backups.tasks.prune_organizations",
                      "schedule": crontab(minute=30, hour=3)},
    "weekly-summary-reports": {"task": "schedules.tasks.send_summary_reports",
                               "schedule": crontab(minute=0, hour=7, day_of_week=1)},
}

# Graph retries: bounded, honouring Retry-After; the backoff applies when Microsoft gives none.
KODO_GRAPH_MAX_RETRIES = env.int("KODO_GRAPH_MAX_RETRIES", default=6)
KODO_GRAPH_BACKOFF_SECONDS = env.float("KODO_GRAPH_BACKOFF_SECONDS", default=1.0)

# Backups: parallel downloads per run; whole-file attempts before a file is recorded as failed;
# a running backup whose heartbeat is older than this may be taken over by a redelivered task.
KODO_BACKUP_DOWNLOAD_THREADS = env.int("KODO_BACKUP_DOWNLOAD_THREADS", default=8)
KODO_BACKUP_DOWNLOAD_ATTEMPTS = env.int("KODO_BACKUP_DOWNLOAD_ATTEMPTS", default=3)
KODO_BACKUP_STALE_SECONDS = env.int("KODO_BACKUP_STALE_SECONDS", default=120)
for _name in ("KODO_BACKUP_DOWNLOAD_THREADS", "KODO_BACKUP_DOWNLOAD_ATTEMPTS",
              "KODO_BACKUP_STALE_SECONDS"):
    if vars()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1.")

# Retention (manage.py prune and the nightly prune task): the policy for users no enabled schedule
# covers, and how long an unreferenced chunk waits before it leaves the store. The wait must
# exceed the longest backup task: a backup stores chunks before it records the versions using them.
KODO_DEFAULT_KEEP_VERSIONS = env.int("KODO_DEFAULT_KEEP_VERSIONS", default=30)
KODO_DEFAULT_KEEP_DELETED_DAYS = env.int("KODO_DEFAULT_KEEP_DELETED_DAYS", default=365)
KODO_PRUNE_GRACE_HOURS = env.int("KODO_PRUNE_GRACE_HOURS", default=24)
if KODO_DEFAULT_KEEP_VERSIONS < 1 or KODO_DEFAULT_KEEP_DELETED_DAYS < 1:
    raise ImproperlyConfigured(
        "KODO_DEFAULT_KEEP_VERSIONS and KODO_DEFAULT_KEEP_DELETED_DAYS must be at least 1.")
if KODO_PRUNE_GRACE_HOURS * 3600 <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        f"KODO_PRUNE_GRACE_HOURS must exceed the backup task time limit "
        f"({CELERY_TASK_TIME_LIMIT // 3600} hours).")

KODO_STORE_URL = env.str("KODO_STORE_URL", default=str(VAR_DIR / "store"))
KODO_STORE_PACK_BELOW = env.int("KODO_STORE_PACK_BELOW", default=1 << 20)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}
