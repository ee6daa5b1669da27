"""Settings, read from environment variables through three small typed helpers.

SQLite (WAL, IMMEDIATE transactions) is the embedded default; set DATABASE_URL to use PostgreSQL.
"""

import os
from pathlib import Path

import dj_database_url
from csp.constants import NONCE

BASE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = Path(os.environ.get("POPS_HOME", Path.cwd()))
VAR_DIR = Path(os.environ.get("POPS_VAR_DIR", PROJECT_DIR / "var"))


def envbool(name: str, default: str) -> bool:
    return os.environ.get(name, default).strip().lower() in ("1", "true", "yes", "on")


def envint(name: str, default: str) -> int:
    return int(os.environ.get(name, default))


def envsecret(name: str, default: str | None = None) -> str:
    """A secret from NAME, or from the file named by NAME_FILE (container secrets)."""
    if path := os.environ.get(f"{name}_FILE"):
        return Path(path).read_text().strip()
    value = os.environ.get(name, default)
    if value is None:
        raise RuntimeError(f"{name} must be set")
    return value


DEBUG = envbool("DEBUG", "true")
SECRET_KEY = envsecret("SECRET_KEY", "insecure-dev-key-change-me" if DEBUG else None)
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_tasks_db",  # the background-task queue, in this database
    "ninja",  # serves the API docs' assets locally (no CDN)
    "pops.core",
    "pops.ledger",
    "pops.groups",
    "pops.api",
    "pops.payments",
    "pops.payments.gateways.sandbox",
    "pops.notify",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "pops.core.middleware.RejectControlCharacters",
    "pops.core.middleware.ApiAnswersJson",
    "pops.core.pan_guard.CardNumberGuard",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "pops.urls"
WSGI_APPLICATION = "pops.wsgi.application"
AUTH_USER_MODEL = "core.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# SQLite as a real embedded database: WAL, IMMEDIATE write transactions (so a transaction takes
# the write lock when it starts, as row locks would on PostgreSQL) and a busy timeout.
SQLITE_PATH = VAR_DIR / "pops.sqlite3"
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 30,
    "init_command": (
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
        "PRAGMA busy_timeout=30000;"
    ),
}
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{SQLITE_PATH}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
# Each test run gets its own test database, so runs side by side (CI and a developer, or
# several developers on one machine) never drop each other's.
_TEST_SUFFIX = os.environ.get("POPS_TEST_DB_SUFFIX", str(os.getpid()))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = SQLITE_OPTIONS
    # Tests use a file too (not :memory:), so WAL and the write lock behave as in production.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{_TEST_SUFFIX}.sqlite3")}
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_pops_{_TEST_SUFFIX}"}
    # Server-side binding, and psycopg preparing a statement once it has run 5 times on a
    # connection (Django turns that off unless asked), so PostgreSQL stops parsing and planning
    # the same payment statements again; persistent connections (above) keep them prepared.
    # Behind PgBouncer in transaction mode, set DATABASE_PREPARE_THRESHOLD=none.
    _prepare = os.environ.get("DATABASE_PREPARE_THRESHOLD", "5")
    DATABASES["default"]["OPTIONS"] = {
        "server_side_binding": True,
        "prepare_threshold": None if _prepare.lower() == "none" else int(_prepare),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
]
AUTHENTICATION_BACKENDS = ["pops.core.auth.StaffBackend"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# --- Security headers -----------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", "false" if DEBUG else "true")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = envint("HSTS_SECONDS", "0" if DEBUG else "31536000")
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", NONCE],
        "style-src": ["'self'", NONCE],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# --- Sandbox gateway --------------------------------------------------------------------------
# The built-in stand-in for a card gateway (/sandbox-gateway/): on by default and in the demo,
# off in production (DEBUG off) unless asked for. Its tokenization endpoint is the one path the
# card-number guard lets card numbers through; with the Sandbox off, no path is exempt.
SANDBOX_GATEWAY_ENABLED = envbool("SANDBOX_GATEWAY_ENABLED", "true" if DEBUG else "false")
PAN_GUARD_EXEMPT_PATHS: tuple[str, ...] = (
    ("/sandbox-gateway/tokens",) if SANDBOX_GATEWAY_ENABLED else ()
)

# --- Email ----------------------------------------------------------------------------------
# Emailed receipts and notices go through Django's email backends (pops.notify.email). In DEBUG
# (the demo) they are written as files under var/mail; otherwise SMTP, configured here. Set
# EMAIL_BACKEND to any Django backend, e.g. django.core.mail.backends.console.EmailBackend.
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.filebased.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_FILE_PATH = Path(os.environ.get("EMAIL_FILE_PATH", VAR_DIR / "mail"))
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", "587")
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = envsecret("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", "true")
EMAIL_USE_SSL = envbool("EMAIL_USE_SSL", "false")
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", "10")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "POPS <no-reply@localhost>")

# --- Background tasks -----------------------------------------------------------------------
# Work that follows a request (the emailed receipt) runs as a django-tasks task. By default the
# queue is a table in this database (django-tasks-db, through pops.core.tasks.DatabaseBackend):
# a payment queues its receipt email in its own transaction (the email is due exactly when the
# payment commits), and `pops db_worker` sends it. Set
# TASKS_BACKEND=django_tasks.backends.immediate.ImmediateBackend to run tasks in the request
# instead (after the transaction commits), with no worker.
TASKS_BACKEND = os.environ.get("TASKS_BACKEND", "pops.core.tasks.DatabaseBackend")
TASKS = {"default": {"BACKEND": TASKS_BACKEND}}

# --- API ------------------------------------------------------------------------------------
# The import endpoint takes documents up to 20 MB; larger loads go through `pops import`.
API_IMPORT_MAX_BYTES = envint("API_IMPORT_MAX_BYTES", str(20 * 1024 * 1024))
DATA_UPLOAD_MAX_MEMORY_SIZE = API_IMPORT_MAX_BYTES + 1024

# --- Logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"withhold_card_numbers": {"()": "pops.core.card_numbers.WithholdCardNumbers"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # Request lines name the path; one holding a card number is withheld (S-3).
    "loggers": {
        name: {"filters": ["withhold_card_numbers"]} for name in ("django.request", "django.server")
    },
}
