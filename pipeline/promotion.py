"""Champion/challenger rules of the model registry: which task a model serves, and when a new
version may take the `champion` alias (stdlib only; the MLflow side is tracking/registry.py).

The task is the data set's identity: its name (a table's file name without directory or
suffix, so the same file read from another directory is the same task), its feature names in
order (the model's input columns) and its class labels (its outputs). Not the data's content
digest: a regenerated or grown data set is the same task asked again, and whether two test
errors may be compared is a separate question, answered by the test split's digest.
One registered model per task, named `<prefix>-<data set>-<8 hex of the task digest>`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import PurePath

from pipeline.data.digest import short_digest
from pipeline.data.tables import READERS


@dataclass(frozen=True)
class Task:
    dataset: str
    features: tuple[str, ...]
    classes: tuple[str, ...]

    @property
    def digest(self) -> str:
        text = json.dumps([self.dataset, list(self.features), list(self.classes)])
        return short_digest(text)

    def model_name(self, prefix: str) -> str:
        """`<prefix>-<data set>-<8 hex>`; characters MLflow refuses in a name ('/', ':') and
        other punctuation become '_'."""
        return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{prefix}-{self.dataset}-{self.digest[:8]}")


def task_of(prepared) -> Task:
    """The task of a prepared data set (`stages.Prepared`: name, feature_names, classes)."""
    name = str(prepared.name)
    if PurePath(name).suffix.lower() in READERS:  # a table source is named by its path
        name = PurePath(name).stem
    return Task(name, tuple(map(str, prepared.feature_names)), tuple(map(str, prepared.classes)))


@dataclass(frozen=True)
class Contender:
    """A version's evidence: None where the registry holds nothing (a version registered by
    hand, outside `evaluate`)."""

    version: str
    test_error: float | None
    test_digest: str | None
    task_digest: str | None
    signature: str | None  # the model's input schema as JSON


@dataclass(frozen=True)
class Decision:
    promote: bool       # the version takes the champion alias
    take_aliases: bool  # False: it takes no alias at all (not even challenger)
    reason: str

    @property
    def word(self) -> str:
        return "promoted" if self.promote else "not promoted" if self.take_aliases else "no alias"


def decide(new: Contender, champion: Contender | None, holders: list[tuple[str, Contender]],
           *, gate: str | None, margin: float) -> Decision:
    """Whether `new` becomes champion. `holders`: (alias, version) pairs holding an alias of
    this registered model now; `gate`: None when the dev gate passed, else its text; `margin`:
    the test error must be below the champion's by more than this (same test split only).

    In order: a differing input signature takes no alias; a failed dev gate, another task or
    another test split never displaces a champion; then strictly lower test error wins (a tie
    keeps the incumbent: equal evidence is no reason to change what is served)."""
    for alias, held in holders:  # an unknown signature (None) matches nothing
        if held.version != new.version and (held.signature is None
                                            or held.signature != new.signature):
            what = "differs from" if held.signature else "cannot be compared with"
            return Decision(False, False, f"input signature {what} version {held.version}'s "
                                          f"(holds {alias!r}): no alias taken")
    if gate is not None:
        return Decision(False, True, f"dev gate failed ({gate})")
    if champion is None:
        return Decision(True, True, "no champion yet")
    them = f"champion version {champion.version}"
    if champion.task_digest not in (None, new.task_digest):  # None: registered by hand
        return Decision(False, True, f"{them} serves another task (task digest "
                                     f"{champion.task_digest} vs {new.task_digest})")
    if champion.test_digest != new.test_digest or champion.test_error is None:
        theirs = champion.test_digest or "unknown"
        return Decision(False, True, f"test split differs from {them}'s (digest {theirs} vs "
                                     f"{new.test_digest}): no comparable evidence, champion "
                                     "unchanged")
    mine, theirs = f"{new.test_error:.4f}", f"{champion.test_error:.4f}"
    on = f"on test split {new.test_digest}"
    if new.test_error < champion.test_error - margin:
        return Decision(True, True, f"test error {mine} < {them}'s {theirs} - margin {margin:g} "
                                    f"{on}")
    return Decision(False, True, f"test error {mine} not below {them}'s {theirs} - margin "
                                 f"{margin:g} {on}")
