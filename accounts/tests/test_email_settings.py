"""Email settings come from the environment and fail loudly on bad values."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def _settings(**env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DEBUG"}}
    base.update({"DATABASE_URL": "sqlite:///:memory:", "SECRET_KEY": "x" * 50, **env})
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_HOST_USER, "
        "s.EMAIL_USE_TLS, s.DEFAULT_FROM_EMAIL, sep='|')"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "recsite.settings.base"},
        capture_output=True,
        text=True,
    )


def test_debug_prints_email_to_the_console():
    result = _settings(DEBUG="1")
    assert result.stdout.startswith("django.core.mail.backends.console.EmailBackend|")


def test_production_sends_over_smtp_configured_from_the_environment():
    result = _settings(
        DEBUG="0",
        EMAIL_HOST="smtp.example.com",
        EMAIL_PORT="587",
        EMAIL_HOST_USER="mailer",
        EMAIL_HOST_PASSWORD="secret",
        EMAIL_USE_TLS="true",
        DEFAULT_FROM_EMAIL="Recsite <hello@example.com>",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "django.core.mail.backends.smtp.EmailBackend|smtp.example.com|587|mailer|True|"
        "Recsite <hello@example.com>"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EMAIL_PORT": "smtp"}, "EMAIL_PORT='smtp' is not an integer"),
        ({"EMAIL_PORT": "70000"}, "EMAIL_PORT=70000 is not a port"),
        ({"EMAIL_USE_TLS": "maybe"}, "EMAIL_USE_TLS='maybe' is not a boolean"),
        ({"DEFAULT_FROM_EMAIL": "recsite"}, "DEFAULT_FROM_EMAIL='recsite' is not an address"),
    ],
)
def test_bad_email_settings_fail_loudly(env, message):
    result = _settings(DEBUG="0", **env)
    assert result.returncode != 0
    assert message in result.stderr
