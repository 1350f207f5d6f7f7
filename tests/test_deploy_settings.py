import os
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DEBUG": "false",
    "PLAYGROUND_HTTPS": "true",
    "ALLOWED_HOSTS": "playground.example.com",
    "PLAYGROUND_TRUSTED_PROXIES": "10.0.0.5",
    "SECRET_KEY": "x7Hq2-production-like-secret-key-with-plenty-of-entropy-91kz0pQ",
}


def manage(*args, env):
    # Nothing the test session set for itself (the browser tests' DJANGO_ALLOW_ASYNC_UNSAFE)
    # may leak into the production check.
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**inherited, **env},
        capture_output=True,
        text=True,
    )


def test_check_deploy_is_clean_with_the_documented_production_environment():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_without_the_https_settings():
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env={**PRODUCTION, "PLAYGROUND_HTTPS": "false"}
    )
    assert result.returncode != 0
    assert "SECURE_SSL_REDIRECT" in result.stdout + result.stderr


def test_a_missing_secret_key_stops_start_up_with_a_clear_message(tmp_path):
    env = {**PRODUCTION, "SECRET_KEY": "", "PLAYGROUND_ENV_FILE": str(tmp_path / "none.env")}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_a_malformed_trusted_proxy_stops_start_up_with_a_clear_message():
    result = manage("check", env={**PRODUCTION, "PLAYGROUND_TRUSTED_PROXIES": "10.0.0.5,caddy"})
    assert result.returncode != 0
    assert "PLAYGROUND_TRUSTED_PROXIES: 'caddy' does not appear to be an IPv4" in result.stderr


def test_the_old_proxy_switch_alone_says_what_replaced_it():
    env = {**PRODUCTION, "PLAYGROUND_TRUSTED_PROXIES": "", "PLAYGROUND_BEHIND_PROXY": "true"}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "PLAYGROUND_BEHIND_PROXY is replaced by PLAYGROUND_TRUSTED_PROXIES" in result.stderr


def test_migrate_creates_the_cache_table_the_rate_limits_count_in(tmp_path):
    database = tmp_path / "fresh.sqlite3"
    env = {"DATABASE_URL": f"sqlite:///{database}", "PLAYGROUND_DATA_DIR": str(tmp_path)}
    result = manage("migrate", "--no-input", env={**PRODUCTION, **env})
    assert result.returncode == 0, result.stdout + result.stderr
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "playground_cache" in tables
