"""Settings for playground, every one from the environment (or a `.env` file).

Local defaults are safe and need nothing: SQLite in WAL mode, the offline `local` engine, DEBUG off.
Production turns on the HTTPS set with `PLAYGROUND_HTTPS=true` (see the README's configuration table).
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

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
    "django_tasks_db",
    "playground.catalog",
    "playground.generations",
    "playground.keys",
    "playground.api",
    "playground.web",
]

MIDDLEWARE = [
    "playground.api.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
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
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
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
LOGIN_URL = "/admin/login/"

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
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Request limits --------------------------------------------------------------------------------
# Data URIs travel inside JSON bodies, so Django's 2.5 MB default is too small: 14 reference images
# of ~1.5 MB each fit in the default 32 MB. Over it -> 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("PLAYGROUND_MAX_BODY_BYTES", default=32 * 1024 * 1024)
PLAYGROUND_MAX_INPUT_IMAGE_BYTES = env.int("PLAYGROUND_MAX_INPUT_IMAGE_BYTES", default=20 * 1024 * 1024)
PLAYGROUND_MAX_INPUT_IMAGE_PIXELS = env.int("PLAYGROUND_MAX_INPUT_IMAGE_PIXELS", default=50_000_000)

# --- Playground ------------------------------------------------------------------------------------
PLAYGROUND_ENGINE = env.str("PLAYGROUND_ENGINE", default="")  # overrides every catalog entry when set
PLAYGROUND_PUBLIC_URL = env.str("PLAYGROUND_PUBLIC_URL", default="").rstrip("/")
PLAYGROUND_FONT_PATH = env.str("PLAYGROUND_FONT_PATH", default="")
# Signed output URLs: a token is issued per window and accepted for PLAYGROUND_FILE_URL_TTL seconds.
PLAYGROUND_FILE_URL_WINDOW = env.int("PLAYGROUND_FILE_URL_WINDOW", default=24 * 3600)
PLAYGROUND_FILE_URL_TTL = env.int("PLAYGROUND_FILE_URL_TTL", default=7 * 24 * 3600)
PLAYGROUND_PAGE_SIZE = env.int("PLAYGROUND_PAGE_SIZE", default=20)

# --- Security ---------------------------------------------------------------------------------------
HTTPS = env.bool("PLAYGROUND_HTTPS", default=False)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=HTTPS)
if env.bool("PLAYGROUND_BEHIND_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}
