"""Secrets out of what a user shares: a password inside a URL or connection string.

`postgresql://user:pw@host/db` is how Optuna and MLflow take credentials, and the same string
would otherwise land in params, tags, the logged config, study attributes and the console.
Every such write goes through `redact`, which keeps the user and host (what a reader needs to
know where things went) and masks the secret. The three forms a store URL carries one in:

- userinfo: `scheme://user:password@host` -> `scheme://user:***@host`;
- a query parameter: `postgresql://u@h/db?password=pw` (libpq, SQLAlchemy) -> `?password=***`,
  any case (`PASSWORD=`, `sslpassword=`, `db_password=`, `token=`, `api_key=`);
- a libpq keyword string: `host=h user=u password='p w'` -> `password=***`.
"""

from __future__ import annotations

import logging
import re

MASK = "***"

# userinfo: the password runs to the last `@` before the host's `/`, `?` or `#` (an unencoded
# `@` in it is then masked too, not left half shown); quotes end it (a URL quoted in a message)
_PASSWORD_IN_URL = re.compile(
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s'\"]*):[^/?#\s'\"]+@")

# key=value where the key names a secret. The value is a quoted libpq value (`'p w'`, with `\'`
# escapes) or runs to whitespace, `&` (next query parameter) or a quote; a `;` or `,` inside a
# password is masked with it rather than cut and half shown, but a run of punctuation ending
# it is left (the `:` of "url?password=pw: unreachable" belongs to the sentence).
_SECRET_KEY = r"[A-Za-z0-9_.\-]*?(?:password|passwd|pwd|secret|token|api[_\-]?key)"
_SECRET_PARAM = re.compile(
    rf"(?P<key>(?<![A-Za-z0-9]){_SECRET_KEY})(?P<eq>\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*'?|\"(?:[^\"\\]|\\.)*\"?"
    r"|[^\s&'\"]*[^\s&'\":,;.)\]]|[^\s&'\"]+)",
    re.IGNORECASE)


def redact(text: str) -> str:
    """Every credential in `text` masked: userinfo passwords and `password=`-like values."""
    text = _PASSWORD_IN_URL.sub(lambda m: f"{m['head']}:{MASK}@", text)
    return _SECRET_PARAM.sub(lambda m: f"{m['key']}{m['eq']}{MASK}", text)


def recorded(value) -> str:
    """A param's or tag's value as stored: the last gate (callers redact the config already).
    A config packed as `zlib+base64:` was redacted before packing; base64 is not searched."""
    text = str(value)
    return text if text.startswith("zlib+base64:") else redact(text)


def has_secret(text: str) -> bool:
    """Whether `redact` would change `text`."""
    return redact(text) != text


class RedactingFilter(logging.Filter):
    """A handler filter: the record's text (message, and a traceback's exception text) with
    every credential masked. MLflow's and Optuna's own log lines carry the URIs they were given
    (a failed request names its URL, a failed trial quotes the exception)."""

    def filter(self, record: logging.LogRecord) -> bool:
        shown = redact(record.getMessage())
        if shown != record.getMessage():
            record.msg, record.args = shown, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def redact_logs(*names: str) -> None:
    """A `RedactingFilter` on every handler of the loggers `names` (once each)."""
    for name in names:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
