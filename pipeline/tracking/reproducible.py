"""What a trial child run records so `reproduce` can rerun it, added to a write it already does.

A training run records its reproduction inputs with several calls (`config.yaml` artifact,
`git/diff.patch` artifact, tag batches: training.py). A search makes hundreds of trials, and
the overhead work cut a trial to a few writes, so a trial gets the same facts as TAGS merged
into the tags its child run is created with (`StudyLogger.start_trial`): no extra round trip,
no upload.

- `config.json`: the trial's resolved config as compact JSON (which is also YAML, so the
  config loader reads it), passwords masked: ~1.3 kB for the default config, 0.03 ms to make
  (YAML took 3-6 ms a trial). A tag holds 8000 characters; a longer text is stored
  zlib-compressed and base64'd with the prefix `zlib+base64:`. `reproduce` reads this tag
  when the run has no `config.yaml` artifact.
- `data.digest.train`, `data.digest.dev`: the splits the trial trained and was scored on (the
  search never holds the test split, so there is no test digest to record); for a table, also
  `data.path.digest`, its file's (hashed once per process: tracking/training.py).
- `git.commit`, `git.dirty`, `git.diff_digest` (sha256 of the uncommitted changes, instead of
  the diff itself), and `version.*`: computed once per process, since the code a process runs
  was imported when it started.
- `blas.threads`, `blas.library`: read for every trial (microseconds, pipeline/threads.py).
"""

from __future__ import annotations

import base64
import json
import zlib
from functools import lru_cache

from pipeline import threads
from pipeline.data.digest import short_digest
from pipeline.redact import redact

TAG_LIMIT = 8000          # MLflow's longest tag value (mlflow.utils.validation)
PACKED = "zlib+base64:"   # prefix of a config too long to store as plain YAML
NOT_RECORDED = "not recorded: "  # prefix of a config too long even packed (readback says why)


def trial_tags(cfg, prepared=None) -> dict[str, str]:
    """The reproduction tags of one trial (see the module docstring); `prepared` is the
    worker's data without the test split (None: no digests, reproduce will say so)."""
    text = json.dumps(cfg.model_dump(mode="json"), separators=(",", ":"))
    tags = {"config.json": pack_config(redact(text)), "seed": str(cfg.seed)}
    if prepared is not None:
        from pipeline.tracking.training import file_digest_tags

        tags.update({"data.digest.train": prepared.raw_train.digest,
                     "data.digest.dev": prepared.raw_dev.digest, **file_digest_tags(cfg)})
    tags.update(_source_tags())
    tags.update(threads.tags())
    return tags


@lru_cache(maxsize=1)
def _source_tags() -> tuple[tuple[str, str], ...]:
    """git commit/dirty/diff digest and package versions, once per process (2-4 git calls)."""
    from pipeline.tracking.records import git_state, git_tags, package_versions

    state = git_state()
    tags = package_versions() | git_tags(state)
    if state is not None:
        tags["git.diff_digest"] = diff_digest(state["diff"])
    return tuple(tags.items())


def source_tags() -> dict[str, str]:
    """The code and version tags every reproducible run records (lesson children too)."""
    return dict(_source_tags())


def diff_digest(text: str) -> str:
    """The digest `reproduce` compares for uncommitted changes (diff + untracked digests)."""
    return short_digest(text) if text else "none"


def pack_config(text: str) -> str:
    if len(text) <= TAG_LIMIT:
        return text
    packed = PACKED + base64.b64encode(zlib.compress(text.encode(), 9)).decode()
    if len(packed) > TAG_LIMIT:  # not a reason to fail the trial; reproduce will say so
        return f"{NOT_RECORDED}{len(text)} characters, {len(packed)} compressed > {TAG_LIMIT}"
    return packed


def unpack_config(value: str) -> str:
    if value.startswith(PACKED):
        return zlib.decompress(base64.b64decode(value[len(PACKED):])).decode()
    return value
