"""Secrets out of what a user shares: a password inside a URL (storage or tracking URI).

`postgresql://user:pw@host/db` is how Optuna and MLflow take credentials, and the same string
would otherwise land in params, tags, the logged config, study attributes and the console.
Every such write goes through `redact`, which keeps the user and host (what a reader needs to
know where things went) and masks the password.
"""

from __future__ import annotations

import re

_PASSWORD_IN_URL = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*):[^@/\s]+@")
MASK = "***"


def redact(text: str) -> str:
    """`scheme://user:password@host` -> `scheme://user:***@host`, anywhere in `text`."""
    return _PASSWORD_IN_URL.sub(lambda m: f"{m['head']}:{MASK}@", text)
