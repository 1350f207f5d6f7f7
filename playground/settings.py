"""Settings for playground, every one from the environment (or a `.env` file).

Local defaults are safe and need nothing: SQLite in WAL mode, the offline `local` engine, DEBUG off.
Production turns on the HTTPS set with `PLAYGROUND_HTTPS=true` (see the README's configuration table).
"""

import ipaddress
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from playground.storage import bucket_origins, storages_setting

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
env_file = env.path("PLAYGROUND_ENV_FILE", default=str(BASE_DIR / ".env"))
if Path(env_file).is_file():
    env.read_env(str(env_file))

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Run `make .env` to create a local one, or export SECRET_KEY."
    )
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "playground.access",
    "playground.catalog",
    "playground.generations",  # before django_tasks_db: its `db_worker` command is ours
    "django_tasks_db",
    "playground.keys",
    "playground.teams",
    "playground.api",
    "playground.web",
]

MIDDLEWARE = [
    "playground.access.middleware.TrustedProxyMiddleware",
    "playground.api.middleware.RequestIdMiddleware",
    "playground.api.middleware.UrlTextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "playground.api.middleware.ApiPathMiddleware",  # /api/v1 goes on through the list below
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "playground.access.middleware.SignInThrottleMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "playground.web.middleware.HtmxHistoryRestoreMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "playground.web.middleware.HtmxSignInRedirectMiddleware",
    "playground.api.middleware.BodyLimitMiddleware",
]
# The rest of the way for /api/v1 requests after ApiPathMiddleware: what an API answer needs of
# the list above (its headers, the body limit), without the session, CSRF, user, messages or htmx.
PLAYGROUND_API_MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "playground.api.middleware.BodyLimitMiddleware",
]

ROOT_URLCONF = "playground.urls"
WSGI_APPLICATION = "playground.wsgi.application"

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
                "playground.web.context.workspaces",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------
# SQLite is the embedded default, tuned for a web server and a worker writing at once: WAL journal,
# synchronous=NORMAL, a busy timeout, and IMMEDIATE transactions so writers queue instead of failing
# with "database is locked". PostgreSQL (or anything else) comes in through DATABASE_URL.
DATA_DIR = Path(env.str("PLAYGROUND_DATA_DIR", default=str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'playground.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # Tests that another process or thread must see need a file-backed test database.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
else:
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
# Connections are reused, SQLite's too: opening one costs more than a simple query (Django registers
# its SQL functions on each), about 40% of the cheapest request (benchmarks/RESULTS.md).
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Task queue ---------------------------------------------------------------------------------
TASKS = {
    "default": {
        "BACKEND": env.str("PLAYGROUND_TASK_BACKEND", default="django_tasks_db.DatabaseBackend"),
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static and media files --------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Without collectstatic (local runs), whitenoise serves straight from the finders.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)
MEDIA_ROOT = Path(env.str("PLAYGROUND_MEDIA_ROOT", default=str(DATA_DIR / "media")))
MEDIA_URL = "/media/"  # never served directly: files go through the owner-checking view
# Inputs and outputs: the local folder (MEDIA_ROOT) unless PLAYGROUND_STORAGE_URL names an
# S3-compatible bucket, which every host of a multi-host installation must share (playground/storage.py).
# Not a setting of its own: it may hold the bucket's secret, and the debug page and error reports
# show every setting not named like a secret (STORAGES' secret_key they mask).
storage_url = env.str("PLAYGROUND_STORAGE_URL", default="")
STORAGES = {
    "default": storages_setting(storage_url),
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Files are sent by the bucket itself: our file URLs answer with a redirect to a presigned URL valid
# for PLAYGROUND_S3_PRESIGNED_TTL seconds, instead of streaming the bytes through this server.
PLAYGROUND_S3_PRESIGNED = env.bool("PLAYGROUND_S3_PRESIGNED", default=False)
PLAYGROUND_S3_PRESIGNED_TTL = env.int("PLAYGROUND_S3_PRESIGNED_TTL", default=3600)
if PLAYGROUND_S3_PRESIGNED and not storage_url:
    raise ImproperlyConfigured("PLAYGROUND_S3_PRESIGNED needs a bucket: set PLAYGROUND_STORAGE_URL=s3://….")
# A worker tries this many times more, backing off (1, 2, 4 … s), to save an output the store
# refused, then fails the task saying so (never succeeded without its files).
PLAYGROUND_STORAGE_SAVE_RETRIES = env.int("PLAYGROUND_STORAGE_SAVE_RETRIES", default=3)

# --- Request limits --------------------------------------------------------------------------------
# Data URIs travel inside JSON bodies, so Django's 2.5 MB default is too small: 14 reference images
# of ~1.5 MB each fit in the default 32 MB. A body over it, uploads included, is refused (413) by
# BodyLimitMiddleware before any of it is read (or, sent chunked, as soon as it goes over).
PLAYGROUND_MAX_BODY_BYTES = env.int("PLAYGROUND_MAX_BODY_BYTES", default=32 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = PLAYGROUND_MAX_BODY_BYTES
PLAYGROUND_MAX_INPUT_IMAGE_BYTES = env.int("PLAYGROUND_MAX_INPUT_IMAGE_BYTES", default=20 * 1024 * 1024)
# Pixels, read from an image's header before any is decoded: per input image, and for all the input
# images of one task together (the four 7000x7000 PNGs, 196 MP in 852 KB, are refused). A
# per-image cap above Pillow's own hard cap (about 179 MP) is held to Pillow's.
PLAYGROUND_MAX_INPUT_IMAGE_PIXELS = env.int("PLAYGROUND_MAX_INPUT_IMAGE_PIXELS", default=50_000_000)
PLAYGROUND_MAX_TASK_PIXELS = env.int("PLAYGROUND_MAX_TASK_PIXELS", default=150_000_000)
# The most characters of any text in a task's input (a prompt, ...) whose schema sets no maxLength;
# longer text is refused at submit (422) in the API and the form (see catalog/text.py).
PLAYGROUND_MAX_TEXT_CHARS = env.int("PLAYGROUND_MAX_TEXT_CHARS", default=10_000)
# The most tasks one batch (POST /api/v1/batches) may make: its models times its varied values.
PLAYGROUND_MAX_BATCH_TASKS = env.int("PLAYGROUND_MAX_BATCH_TASKS", default=16)

# --- Fetching URLs (hosted inputs) and webhooks ------------------------------------------------------
# Hosted inputs and webhook targets must be public addresses on ports 80/443 (see engines/fetch.py);
# the hosts listed here (`host` = any port, `host:port` = that port) are exempt, e.g. an internal store.
PLAYGROUND_FETCH_ALLOWED_HOSTS = env.list("PLAYGROUND_FETCH_ALLOWED_HOSTS", default=[])
PLAYGROUND_FETCH_MAX_BYTES = env.int("PLAYGROUND_FETCH_MAX_BYTES", default=20 * 1024 * 1024)
PLAYGROUND_FETCH_TIMEOUT = env.float("PLAYGROUND_FETCH_TIMEOUT", default=20.0)  # seconds, whole download
# At submit, a hosted input's name is looked up (to refuse private addresses early) for at most this
# long; a name that does not answer in time is accepted and checked again when the task runs.
PLAYGROUND_SUBMIT_DNS_TIMEOUT = env.float("PLAYGROUND_SUBMIT_DNS_TIMEOUT", default=2.0)
# Webhooks are signed (Standard Webhooks) with the task owner's own secret (Keys page). After a
# rotation the old secret keeps signing beside the new one for this many seconds (0: stops at once).
PLAYGROUND_WEBHOOK_SECRET_GRACE = env.int("PLAYGROUND_WEBHOOK_SECRET_GRACE", default=24 * 3600)
PLAYGROUND_WEBHOOK_TIMEOUT = env.float("PLAYGROUND_WEBHOOK_TIMEOUT", default=10.0)  # seconds per attempt

# --- Playground ------------------------------------------------------------------------------------
PLAYGROUND_ENGINE = env.str("PLAYGROUND_ENGINE", default="")  # overrides every catalog entry when set
PLAYGROUND_PUBLIC_URL = env.str("PLAYGROUND_PUBLIC_URL", default="").rstrip("/")
PLAYGROUND_FONT_PATH = env.str("PLAYGROUND_FONT_PATH", default="")
# Signed output URLs: a token is issued per window and accepted for PLAYGROUND_FILE_URL_TTL seconds.
PLAYGROUND_FILE_URL_WINDOW = env.int("PLAYGROUND_FILE_URL_WINDOW", default=24 * 3600)
PLAYGROUND_FILE_URL_TTL = env.int("PLAYGROUND_FILE_URL_TTL", default=7 * 24 * 3600)
PLAYGROUND_PAGE_SIZE = env.int("PLAYGROUND_PAGE_SIZE", default=20)

# --- Task execution: leases, the reaper, demo slowdown ----------------------------------------------
# A worker holds a running task for PLAYGROUND_TASK_LEASE seconds and renews the lease every
# PLAYGROUND_TASK_HEARTBEAT seconds. The reaper (`manage.py reap_tasks`) re-queues a task whose lease
# ran out (its worker died) until it has been started PLAYGROUND_TASK_MAX_ATTEMPTS times, then fails
# it; it re-enqueues a task left queued PLAYGROUND_QUEUED_TIMEOUT seconds with no job in the queue.
# It looks every PLAYGROUND_REAPER_INTERVAL seconds, so a dead worker's task moves on within
# about lease + interval.
PLAYGROUND_TASK_LEASE = env.float("PLAYGROUND_TASK_LEASE", default=60.0)
PLAYGROUND_TASK_HEARTBEAT = env.float("PLAYGROUND_TASK_HEARTBEAT", default=PLAYGROUND_TASK_LEASE / 4)
PLAYGROUND_TASK_MAX_ATTEMPTS = env.int("PLAYGROUND_TASK_MAX_ATTEMPTS", default=2)
PLAYGROUND_QUEUED_TIMEOUT = env.float("PLAYGROUND_QUEUED_TIMEOUT", default=120.0)
PLAYGROUND_REAPER_INTERVAL = env.float("PLAYGROUND_REAPER_INTERVAL", default=10.0)
# The fair queue: at most this many tasks of one account (a user; a demo pass counts as its owner)
# run at once, and a free worker starts the oldest task of the account served least recently. 0: no
# limit (the turns still go round).
PLAYGROUND_MAX_RUNNING_PER_OWNER = env.int("PLAYGROUND_MAX_RUNNING_PER_OWNER", default=2)
# Seconds the local engine waits per image (and per second of video): for demos and tests of
# cancel and shutdown, which need a task that is still running a moment later.
PLAYGROUND_LOCAL_ENGINE_DELAY = env.float("PLAYGROUND_LOCAL_ENGINE_DELAY", default=0.0)

# --- Upstream: the MindVideo platform (the `mindvideo` engine) -----------------------------------------
# The platform origin; a trailing /api/v1 is accepted. Each user's key is stored encrypted
# (`manage.py set_upstream_key`); MINDVIDEO_API_KEY is the operator's fallback for users without one.
MINDVIDEO_BASE_URL = env.str("MINDVIDEO_BASE_URL", default="https://api.mindvideo.ai")
MINDVIDEO_API_KEY = env.str("MINDVIDEO_API_KEY", default="")
MINDVIDEO_TIMEOUT = env.float("MINDVIDEO_TIMEOUT", default=30.0)  # seconds per HTTP request
# 429, 5xx, timeouts and malformed answers are retried this many times, backing off, per request.
MINDVIDEO_MAX_RETRIES = env.int("MINDVIDEO_MAX_RETRIES", default=5)
# The first poll (and retry) delay; it backs off to ten times this.
MINDVIDEO_POLL_INTERVAL = env.float("MINDVIDEO_POLL_INTERVAL", default=0.5)
MINDVIDEO_MAX_WAIT = env.float("MINDVIDEO_MAX_WAIT", default=3600.0)  # give up (and cancel upstream)
MINDVIDEO_MAX_DOWNLOAD_BYTES = env.int("MINDVIDEO_MAX_DOWNLOAD_BYTES", default=512 * 1024 * 1024)
MINDVIDEO_DOWNLOAD_TIMEOUT = env.float("MINDVIDEO_DOWNLOAD_TIMEOUT", default=600.0)  # per output file
# Input files (uploads, data URIs) go to the platform as signed URLs it fetches from us when
# PLAYGROUND_PUBLIC_URL is set; inline as data URIs when it is not, or when this is true (a public
# URL the platform cannot reach, e.g. on an internal network).
MINDVIDEO_INLINE_INPUTS = env.bool("MINDVIDEO_INLINE_INPUTS", default=False)
# Fernet keys for stored upstream keys and webhook secrets: the first encrypts, all decrypt
# (rotation: prepend a new key, run `manage.py rotate_upstream_keys`, which re-encrypts both, then
# drop the old one). Empty: derived from SECRET_KEY (and SECRET_KEY_FALLBACKS) with HKDF.
PLAYGROUND_FERNET_KEYS = env.list("PLAYGROUND_FERNET_KEYS", default=[])

# --- Accounts ---------------------------------------------------------------------------------
# Open self-service sign-up. Off: the first visitor makes the administrator account, and everyone
# else joins through a team invite link (or an account an administrator makes).
PLAYGROUND_SIGNUP = env.bool("PLAYGROUND_SIGNUP", default=False)
# Sign-in lockout of the pair (username, client address): this many failures within the window lock
# that username out from that address only (see playground/access/signin.py); 0 turns it off.
PLAYGROUND_LOGIN_MAX_FAILURES = env.int("PLAYGROUND_LOGIN_MAX_FAILURES", default=5)
PLAYGROUND_LOGIN_LOCKOUT_SECONDS = env.int("PLAYGROUND_LOGIN_LOCKOUT_SECONDS", default=15 * 60)

# --- Client address ----------------------------------------------------------------------------
# The reverse proxies (addresses or networks) whose X-Forwarded-For, -Proto and -Host are
# believed; from anyone else the headers are dropped. Empty: the peer is the client (no proxy).
PLAYGROUND_TRUSTED_PROXIES = env.list("PLAYGROUND_TRUSTED_PROXIES", default=[])
try:
    [ipaddress.ip_network(entry.strip(), strict=False) for entry in PLAYGROUND_TRUSTED_PROXIES]
except ValueError as exc:
    raise ImproperlyConfigured(
        f"PLAYGROUND_TRUSTED_PROXIES: {exc}; give addresses or networks such as 172.16.0.0/12."
    ) from exc
if env.bool("PLAYGROUND_BEHIND_PROXY", default=False) and not PLAYGROUND_TRUSTED_PROXIES:
    raise ImproperlyConfigured(
        "PLAYGROUND_BEHIND_PROXY is replaced by PLAYGROUND_TRUSTED_PROXIES: set it to your reverse proxy's "
        "address or network (e.g. PLAYGROUND_TRUSTED_PROXIES=10.0.0.5) and remove PLAYGROUND_BEHIND_PROXY."
    )

# --- Security ---------------------------------------------------------------------------------------
HTTPS = env.bool("PLAYGROUND_HTTPS", default=False)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=HTTPS)
if PLAYGROUND_TRUSTED_PROXIES:  # the headers are dropped unless a trusted proxy sent them
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True  # still checked against ALLOWED_HOSTS
SESSION_COOKIE_HTTPONLY = True
SESSION_ENGINE = "playground.access.sessions"  # database sessions, read with one hand-written statement
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# A refused form gets the styled page (templates/403_csrf.html); under /api/ the JSON error shape.
CSRF_FAILURE_VIEW = "playground.api.errors.csrf_failure"
# No inline script or style anywhere (htmx runs with includeIndicatorStyles off and allowEval off);
# blob: is for the upload previews, data: for pasted data-URI images.
# Outputs load from PLAYGROUND_PUBLIC_URL, and with presigned URLs from the bucket they redirect to.
FILE_ORIGINS = [
    *([PLAYGROUND_PUBLIC_URL] if PLAYGROUND_PUBLIC_URL else []),
    *(bucket_origins(storage_url) if PLAYGROUND_S3_PRESIGNED else []),
]
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:", "blob:", *FILE_ORIGINS],
    "media-src": [CSP.SELF, "blob:", *FILE_ORIGINS],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# --- Caches and rate limits --------------------------------------------------------------------
# Rate limits count where every process and host sees one count: with the default database cache
# in their own table (access.RateCounter; the cache's incr() would lose hits that come at once),
# with CACHE_URL=redis://… in Redis. Never the per-process memory cache, where each counts alone.
CACHES = {"default": env.cache_url("CACHE_URL", default="dbcache://playground_cache")}
PLAYGROUND_API_RATE_LIMIT = env.str("PLAYGROUND_API_RATE_LIMIT", default="600/60")  # requests/seconds per key
# How long a process keeps an API key it has read (keys.services): the bound on how late a key
# disabled elsewhere stops working. 0: every request reads the key.
PLAYGROUND_KEY_CACHE_SECONDS = env.float("PLAYGROUND_KEY_CACHE_SECONDS", default=1.0)
PLAYGROUND_SIGNIN_RATE_LIMIT = env.str("PLAYGROUND_SIGNIN_RATE_LIMIT", default="20/60")  # per address
# Sign-up attempts (successful or not) per client address: accounts are not minted in bulk, nor
# usernames probed ("already exists"), from one place.
PLAYGROUND_SIGNUP_RATE_LIMIT = env.str("PLAYGROUND_SIGNUP_RATE_LIMIT", default="10/3600")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}
