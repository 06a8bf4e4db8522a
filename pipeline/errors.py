"""Which exceptions are the user's or the environment's (one line, exit 2) and that one line.

Below every package (stdlib and pipeline/redact.py only): the command line (cli.py) and a
spawned search worker (search/study.py) both turn a foreseeable error into one line, and the
worker must not import the command line to do it.
"""

from __future__ import annotations

from pipeline.redact import redact

# Exceptions of the environment rather than of our code: a store, server or file that cannot be
# used. They become one line and exit 2 like a ValueError; anything else (a bug) keeps its
# traceback. Matched by module so that --help does not import mlflow or SQLAlchemy.
_ENVIRONMENT = ("mlflow.", "requests.", "urllib3.", "sqlalchemy.", "optuna.", "psycopg2")


def foreseeable(exc: BaseException) -> bool:
    if isinstance(exc, (ValueError, OSError)):
        return True
    return any(c.__module__.startswith(_ENVIRONMENT) for c in type(exc).__mro__)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    kind = "" if isinstance(exc, ValueError) else f"{type(exc).__name__}: "
    return redact(kind + text)[:500]
