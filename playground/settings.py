"""Settings, all from the environment (see README "Configuration").

Safe defaults for a single-user local install; anything that would be unsafe in
production must be set explicitly, and a malformed value stops start-up with
ImproperlyConfigured rather than being guessed at.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def envbool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def envint(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    return value


def envfloat(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be > 0, got {value}")
    return value


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DATA_DIR = Path(os.environ.get("DATA_DIR", BASE_DIR / "data"))
DEBUG = envbool("DEBUG", False)
# Tests (and the server process the browser tests start) serve static files from source.
TESTING = "pytest" in sys.modules or envbool("PLAYGROUND_TESTING", False)


def _persistent_secret(filename: str) -> str:
    """A random secret kept in DATA_DIR, so a local install needs no configuration
    yet keeps sessions and encrypted keys across restarts."""
    path = DATA_DIR / filename
    if path.exists():
        return path.read_text().strip()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(50)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


SECRET_KEY = os.environ.get("SECRET_KEY") or _persistent_secret("secret_key")
if len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long")

# Fernet keys for secrets at rest (API keys, extra headers). The first key encrypts,
# all of them decrypt, so rotation is: prepend a new key, run `manage.py rotate_keys`,
# then drop the old one. Without the variable a key is derived from SECRET_KEY.
FIELD_ENCRYPTION_KEYS = envlist("FIELD_ENCRYPTION_KEYS", "")
for _position, _key in enumerate(FIELD_ENCRYPTION_KEYS, start=1):
    try:
        Fernet(_key)
    except (ValueError, TypeError):
        # Checked here, not at the first encrypt, so a typo stops start-up instead of the
        # first save of an endpoint. The key itself is a secret: name its position only.
        raise ImproperlyConfigured(
            f"FIELD_ENCRYPTION_KEYS entry {_position} is not a Fernet key "
            "(44 url-safe base64 characters; `manage.py generate_key` makes one)"
        ) from None

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must name at least one host (or '*')")
for _host in ALLOWED_HOSTS:
    # A URL here is the usual slip: Django would then refuse every request with a 400.
    if "/" in _host or " " in _host:
        raise ImproperlyConfigured(
            f"ALLOWED_HOSTS entries are host names without scheme or path, got {_host!r}"
        )
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")
for _origin in CSRF_TRUSTED_ORIGINS:
    if not _origin.startswith(("http://", "https://")):
        raise ImproperlyConfigured(
            f"CSRF_TRUSTED_ORIGINS entries need a scheme (https://...), got {_origin!r}"
        )

SIGNUP_OPEN = envbool("SIGNUP_OPEN", False)
DEMO_ENDPOINT = envbool("DEMO_ENDPOINT", True)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Compresses what the others wrote, so first in (last out); see its docstring.
    "chat.middleware.GZipPagesMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "chat.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "playground.urls"
ASGI_APPLICATION = "playground.asgi.application"

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
                "chat.context_processors.sidebar",
                "chat.context_processors.theme",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
_database_url = os.environ.get("DATABASE_URL", "")
if _database_url:
    try:
        DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=0)}
    except Exception as exc:  # dj-database-url raises a few different types
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
    # Every database call of a websocket consumer or a run goes through
    # database_sync_to_async, which closes the connection afterwards: without a pool that
    # is a new PostgreSQL connection per call (relaybench: +60 ms to the first token at
    # C=1). With Django's psycopg pool, closing returns the connection instead.
    DATABASE_POOL_SIZE = envint("DATABASE_POOL_SIZE", 10)
    if DATABASE_POOL_SIZE and DATABASES["default"]["ENGINE"].endswith("postgresql"):
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": DATABASE_POOL_SIZE,
            "timeout": 20,
        }
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(DATA_DIR / "playground.sqlite3")),
            # Kept open: the sockets and runs make every database call through one
            # thread (database_sync_to_async), which otherwise opened a new connection
            # and ran the PRAGMAs below for each call (~1.5 ms, several per turn). A
            # request's own thread ends with it: chat.apps closes its connection then.
            "CONN_MAX_AGE": None,
            "OPTIONS": {
                # WAL lets the page read while a run writes; IMMEDIATE avoids the
                # "database is locked" upgrade deadlock between writers.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;"
                ),
            },
            # A file, not memory, so the browser tests' server process sees the test data;
            # one per test process, so parallel runs never share it.
            "TEST": {
                "NAME": os.path.join(
                    tempfile.gettempdir(), f"playground-test-{os.getpid()}.sqlite3"
                )
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer --------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(
            f"REDIS_URL must start with redis:// or rediss://, got {REDIS_URL!r}"
        )
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": os.environ.get("CHANNELS_PREFIX", "playground"),
                # channels-redis keeps every socket of one process in ONE Redis list,
                # and drops (logging at INFO only) what a group_send finds over capacity:
                # 1,000 was passed by 200 streaming sockets on a busy worker, which lost
                # deltas and final renders. Messages still expire after 60 s.
                "capacity": envint("CHANNELS_CAPACITY", 50_000, minimum=1),
            },
        }
    }
else:
    # Channels' in-memory layer with its per-message costs made constant (see chat.sockets.layer).
    CHANNEL_LAYERS = {"default": {"BACKEND": "chat.sockets.layer.InMemoryChannelLayer"}}

# --- Auth -----------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat:index"
LOGOUT_REDIRECT_URL = "login"

# --- Security -------------------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if envbool("BEHIND_HTTPS_PROXY", False) else None
)
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the page reads it for hx-headers
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
# Preloading is a commitment browsers remember for months (hstspreload.org): opt-in only.
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)
if SECURE_HSTS_PRELOAD and SECURE_HSTS_SECONDS < 31_536_000:
    raise ImproperlyConfigured("SECURE_HSTS_PRELOAD needs SECURE_HSTS_SECONDS >= 31536000")
# Not preloading is that deliberate default, not an oversight: `check --deploy` stays quiet.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- I18N / static --------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = None if TESTING else BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Serve straight from the source folders when collectstatic was not run (dev, tests).
WHITENOISE_USE_FINDERS = DEBUG or TESTING

# --- Playground -----------------------------------------------------------------------
# Seconds after which a `streaming` message whose heartbeat stopped is shown `interrupted`.
RUN_STALE_AFTER = envfloat("RUN_STALE_AFTER", 15.0)
# Seconds for each probe of a compatibility check (a CPU-only llama.cpp server may need more).
COMPAT_PROBE_TIMEOUT = envfloat("COMPAT_PROBE_TIMEOUT", 20.0)
RUN_FRAME_INTERVAL = envfloat("RUN_FRAME_INTERVAL", 0.04)
RUN_SAVE_INTERVAL = envfloat("RUN_SAVE_INTERVAL", 1.0)
MAX_MESSAGE_CHARS = envint("MAX_MESSAGE_CHARS", 200_000, minimum=1)
IMAGE_MAX_BYTES = envint("IMAGE_MAX_BYTES", 5 * 1024 * 1024, minimum=1)
IMAGE_MAX_COUNT = envint("IMAGE_MAX_COUNT", 4, minimum=0)
# The largest socket frame a legal message makes: its text (4 bytes a character at most)
# and its images as base64 data URLs (4/3 of their bytes, plus the URL's head), plus the
# rest of the composer's fields. The consumer refuses a longer frame with a message.
WS_FRAME_MAX_BYTES = (
    MAX_MESSAGE_CHARS * 4 + IMAGE_MAX_COUNT * (-(-IMAGE_MAX_BYTES * 4 // 3) + 64) + 64_000
)
# daphne drops (without a close frame) a websocket message past its own limit, 1 MiB by
# default: it must take every legal frame, and some more, so that a frame a little too
# long still reaches the consumer and is answered. `python -m chat.serve` (make run) and
# daphne's runserver read these; a bare `daphne` needs --websocket-max-message-size.
DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE = WS_FRAME_MAX_BYTES + 1024 * 1024
DAPHNE_WEBSOCKET_MAX_FRAME_SIZE = DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE
# Per-user limits against a flood of sends (0 = no limit): answers streaming at once, and
# answers started in the last minute (counted in the database, so across workers).
RUNS_PER_USER_MAX = envint("RUNS_PER_USER_MAX", 24)
ANSWERS_PER_MINUTE = envint("ANSWERS_PER_MINUTE", 60)
# Open websockets per user, across workers (each page opens two: its conversation's and
# the sidebar's); one more is closed with code 4429 (chat/sockets/auth.py). 0 = no limit.
WS_MAX_PER_USER = envint("WS_MAX_PER_USER", 50)
# An answer (text, reasoning and tool arguments together) is cut past this many characters.
ANSWER_MAX_CHARS = envint("ANSWER_MAX_CHARS", 2_000_000, minimum=1)
# An answer is ended (with its text so far) after this many seconds, whatever arrives.
ANSWER_MAX_SECONDS = envfloat("ANSWER_MAX_SECONDS", 600.0)
# Bytes read from an endpoint (chat/upstream/reading.py), after decompression: all of one
# answer; one SSE line, and what may arrive without any progress of the answer.
UPSTREAM_MAX_BYTES = envint("UPSTREAM_MAX_BYTES", 64 * 1024 * 1024, minimum=64 * 1024)
UPSTREAM_MAX_EVENT_BYTES = envint("UPSTREAM_MAX_EVENT_BYTES", 1024 * 1024, minimum=4096)
# Log-in throttling (chat/login_throttle.py, counted in the database): failed log-ins
# allowed per account and per client address within the window (0 = no limit); past them,
# log-ins are refused until the window moves on. LOGIN_THROTTLE_IP_HEADER names a header
# the reverse proxy sets to the client's address (e.g. X-Forwarded-For); empty: the peer.
LOGIN_FAILURES_PER_ACCOUNT = envint("LOGIN_FAILURES_PER_ACCOUNT", 5)
LOGIN_FAILURES_PER_ADDRESS = envint("LOGIN_FAILURES_PER_ADDRESS", 20)
LOGIN_FAILURE_WINDOW = envint("LOGIN_FAILURE_WINDOW", 900, minimum=1)
LOGIN_THROTTLE_IP_HEADER = os.environ.get("LOGIN_THROTTLE_IP_HEADER", "").strip()
# Largest file the Import page accepts (a Playground export or an OpenAI messages array).
IMPORT_MAX_BYTES = envint("IMPORT_MAX_BYTES", 20 * 1024 * 1024, minimum=1)
# Endpoint URL guard (chat/upstream/netguard.py): for shared deployments, refuse
# endpoints on loopback/private/link-local/metadata addresses, and/or allow only some hosts.
ENDPOINT_BLOCK_PRIVATE = envbool("ENDPOINT_BLOCK_PRIVATE", False)
ENDPOINT_ALLOWED_HOSTS = envlist("ENDPOINT_ALLOWED_HOSTS", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
