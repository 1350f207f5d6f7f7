"""The production settings plus what only benchmarks need: a bare baseline view (`benchmarks.urls`)
and a private folder for `collectstatic`. Nothing here is loaded unless DJANGO_SETTINGS_MODULE
names this module, which only the benchmark scripts do."""

import os

from playground.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.urls"
STATIC_ROOT = os.environ.get("BENCH_STATIC_ROOT", STATIC_ROOT)  # noqa: F405
