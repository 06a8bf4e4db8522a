""""Did you mean ...?" for an unknown config key: the nearest dotted key of the model that
refused it (difflib), or the config key behind an MLproject parameter name typed as a key.

`l2=3` is what `mlflow run . -P l2=3` takes; on the command line the key is
`regularization.l2`, and `regularisation.l2` is one letter away from it.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel

# The MLproject `main` entry point's parameter names -> the config keys its command sets
# (tests/test_daily_commands.py checks this against the MLproject file).
MLPROJECT_ALIASES = {
    "dataset": "data.name", "init": "model.init", "l2": "regularization.l2",
    "keep_prob": "regularization.keep_prob", "learning_rate": "training.learning_rate",
    "epochs": "training.epochs",
}


def dotted_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key of `model` as typed on the command line: sections and their fields, nested
    (a union with a model, like data.target, contributes both its own key and the model's)."""
    keys = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        keys.append(key)
        for member in getattr(field.annotation, "__args__", (field.annotation,)):
            if isinstance(member, type) and issubclass(member, BaseModel):
                keys += dotted_keys(member, key + ".")
                break
    return keys


def typed_key(loc: list[str], value: Any) -> str:
    """The key the user typed: pydantic names only the first unknown part (`regularisation`)
    and gives the rest as its value ({'l2': 3}); a single nested key is followed down."""
    key = ".".join(loc)
    while isinstance(value, dict) and len(value) == 1:
        (part, value), = value.items()
        key += f".{part}"
    return key


def did_you_mean(key: str, root: type[BaseModel], aliases: dict[str, str] | None = None) -> str | None:
    """The config key meant by unknown `key`, or None when nothing is close."""
    if aliases and key in aliases:
        return aliases[key]
    every = dotted_keys(root)
    keys = [k for k in every if not any(o.startswith(k + ".") for o in every)]  # leaves only
    close = difflib.get_close_matches(key, keys, n=1, cutoff=0.8)
    if close:
        return close[0]
    # a right field under a wrong or missing section (`epochs`, `model.learning_rate`)
    last = key.rsplit(".", 1)[-1]
    same = [k for k in keys if k.rsplit(".", 1)[-1] == last]
    return same[0] if len(same) == 1 else None


def closest_name(typed: str, names) -> str | None:
    """The name of `names` meant by `typed`: a close spelling (difflib), or the one whose
    words' initials it is (`lr` -> `learning_rate`, `kp` -> `keep_prob`)."""
    names = list(names)
    close = difflib.get_close_matches(typed, names, n=1, cutoff=0.75)
    if close:
        return close[0]
    initials = [n for n in names if "_" in n and "".join(w[:1] for w in n.split("_")) == typed]
    return initials[0] if len(initials) == 1 else None
