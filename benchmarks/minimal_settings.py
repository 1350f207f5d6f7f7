"""The minimal yardstick's settings: the least Django a useful JSON view needs, so the poll costs
can be divided by Django itself rather than by a view inside playground's own middleware stack.

One middleware (`CommonMiddleware`), no installed apps (the view reads its row with a raw cursor,
so it needs no model, no session and no user), DEBUG off, and playground's own DATABASES,
SECRET_KEY and ALLOWED_HOSTS, taken from the same environment: the same SQLite file with the same
options (WAL, persistent connections), so it reads the very row the app serves. Only
`benchmarks.poll` serves it (`harness.serving_minimal`): the app's gunicorn command and
`playground.wsgi`, with DJANGO_SETTINGS_MODULE naming this module."""

from playground.settings import ALLOWED_HOSTS, DATABASES, SECRET_KEY, TIME_ZONE  # noqa: F401

DEBUG = False
INSTALLED_APPS: list[str] = []
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "benchmarks.minimal_urls"
USE_TZ = True
