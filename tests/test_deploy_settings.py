import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DEBUG": "false",
    "PLAYGROUND_HTTPS": "true",
    "ALLOWED_HOSTS": "playground.example.com",
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
