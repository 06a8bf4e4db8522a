"""The one vocabulary of bounds for every config-like model, and the one translator of pydantic
errors into the house line `<key> must be <bound>, got <value>`.

Like scikit-learn's `_parameter_constraints`, a bound is declared once, beside its field, as a
type: `learning_rate: Positive`, `beta1: UnitHalfOpen`, `n_trials: at_least(1)`; a name is a
`Literal` of the registry's own keys. The run config (`sections.py`, `search.py`) and the lesson
files (`pipeline/lessons/spec.py`) use only these, so the core can trust what it is given.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError


class Section(BaseModel):
    """The base of every config-like model: frozen, and an unknown key is an error (a typo
    must not be ignored)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def bound_text(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if hi is None:
        return f"{'>' if lo_open else '>='} {lo}"
    return f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"


def check_bound(value: float, lo: float | None, hi: float | None = None,
                lo_open: bool = False, hi_open: bool = False) -> float:
    """`value`, or ValueError('must be in (0, 1], got 1.5'); inf and NaN never pass, so a
    bound of (0, inf) cannot admit inf."""
    if not math.isfinite(value):
        raise ValueError(f"must be finite, got {value}")
    below = lo is not None and (value <= lo if lo_open else value < lo)
    above = hi is not None and (value >= hi if hi_open else value > hi)
    if below or above:
        raise ValueError(f"must be {bound_text(lo, hi, lo_open, hi_open)}, got {value}")
    return value


def bound(lo: float | None, hi: float | None = None, *, lo_open: bool = False,
          hi_open: bool = False) -> AfterValidator:
    """The pydantic form of `check_bound` (None passes: optional fields say so in their type)."""
    return AfterValidator(lambda v: v if v is None else check_bound(v, lo, hi, lo_open, hi_open))


def _not_bool(value: Any) -> Any:
    """YAML reads `true` as a bool and pydantic would take it as the int 1: an epochs=true
    typo must not train one epoch."""
    if isinstance(value, bool):
        raise ValueError(f"must be an integer, got {value}")
    return value


def at_least(lo: int):
    """An integer >= lo (bools refused)."""
    return Annotated[int, BeforeValidator(_not_bool), bound(lo)]


def _non_empty(value: Any) -> Any:
    if len(value) == 0:
        raise ValueError(f"must not be empty, got {value!r}")
    return value


NonEmpty = AfterValidator(_non_empty)   # for str, tuple and dict fields
Finite = Annotated[float, bound(None)]                                     # no inf, no NaN
Positive = Annotated[float, bound(0, lo_open=True)]                        # (0, inf)
NonNegative = Annotated[float, bound(0)]                                   # [0, inf)
Fraction = Annotated[float, bound(0, 1, lo_open=True, hi_open=True)]       # (0, 1)
UnitHalfOpen = Annotated[float, bound(0, 1, hi_open=True)]                 # [0, 1)
PosInt = at_least(1)
Count = at_least(0)


def explain_error(exc: ValidationError, root: type[BaseModel], name: str = "the config") -> str:
    """One pydantic error as `key must be ..., got value` (one line): the deepest one, then
    one of our validators' own messages, so that of a union (`data.target: auto | {name,
    params, ...}`) the member the value was meant for speaks (`data.target.name must be one
    of ...`), not `must be one of ['auto']`."""
    err = max(exc.errors(), key=lambda e: (len([p for p in e["loc"] if not _is_type_tag(p)]),
                                           e["type"] == "value_error"))
    loc = [p for p in err["loc"] if not _is_type_tag(p)]
    key = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    if kind == "extra_forbidden":
        parent = ".".join(str(p) for p in loc[:-1]) or name
        valid = sorted(_fields_at(root, loc[:-1]))
        return f"unknown key {key}; valid keys of {parent}: {', '.join(valid)}{_hint(loc, value, root)}"
    if kind == "missing":
        return f"missing key {key}"
    if kind == "value_error":
        message = str(ctx.get("error", err["msg"])).removeprefix("Value error, ")
        # model-level validators may already name their keys ("data.train + data.dev ...")
        return message if not key or f"{key}." in message else f"{key} {message}"
    if kind == "literal_error":
        return f"{key} must be one of {_literal_names(ctx.get('expected', ''))}, got {value!r}"
    if kind.split("_")[0] in _TYPES:
        return f"{key} must be {_TYPES[kind.split('_')[0]]}, got {value!r}"
    return f"{key}: {err['msg']}, got {value!r}"


def _hint(loc: list, value: Any, root: type[BaseModel]) -> str:
    """"; did you mean regularization.l2?" when a key of `root` (or the config key of an
    MLproject parameter name) is close to the one typed, else ""."""
    from pipeline.config.suggest import MLPROJECT_ALIASES, did_you_mean, dotted_keys, typed_key

    typed = typed_key([str(p) for p in loc if not isinstance(p, int)], value)
    keys = set(dotted_keys(root))
    aliases = {k: v for k, v in MLPROJECT_ALIASES.items() if v in keys}
    meant = did_you_mean(typed, root, aliases)
    if meant is None:
        return ""
    alias = f" (the MLproject parameter {typed} sets it)" if aliases.get(typed) == meant else ""
    return f"; did you mean {meant}?{alias}"


_TYPES = {"int": "an integer", "float": "a number", "bool": "true or false", "string": "a string",
          "dict": "a mapping", "tuple": "a list", "list": "a list", "model": "a mapping"}


def _literal_names(expected: str) -> str:
    """pydantic writes "'a', 'b' or 'c'"; the house writes a list like registries do."""
    names = re.findall(r"'([^']*)'", expected)
    return str(names) if names else expected


def _is_type_tag(part: Any) -> bool:
    """pydantic inserts union member names ('float', 'tuple[...]', 'function-after[...]')."""
    return isinstance(part, str) and ("[" in part or part in {"float", "int", "str", "bool", "none"})


def _fields_at(root: type[BaseModel], path: list) -> list[str]:
    model = root
    for part in path:
        if isinstance(part, int):  # an item of a list of models: same model as the list's
            continue
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        candidates = [a for a in getattr(annotation, "__args__", (annotation,))
                      if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            return []
        model = candidates[0]
    return list(model.model_fields)
