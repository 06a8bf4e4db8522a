"""The run cache keys the batch `train` chose from the free memory for a null batch_size: a run
trained in batches of N rows on a machine with little free memory is not reused where the full
batch fits, or the reverse (their numbers differ)."""

from pathlib import Path

from pipeline import stages
from pipeline.config import load_config

CONF = str(Path(__file__).resolve().parents[1] / "conf")
TINY = ["training.epochs=20", "data.params.n_samples=200"]


def test_the_chosen_batch_is_part_of_the_key_and_the_full_batch_keeps_the_old_key(tracking_uri,
                                                                                   new_store):
    from pipeline.tracking.cache import TrainCache

    new_store(tracking_uri)   # the cache reads this store: a template copy, not 60 migrations

    cfg = load_config(TINY, conf_dir=CONF)
    assert cfg.training.batch_size is None
    prepared = stages.prepare(cfg)
    full = TrainCache(cfg, prepared, read=False)
    same_full = TrainCache(cfg, prepared, read=False, batch_chosen=None)
    in_batches = TrainCache(cfg, prepared, read=False, batch_chosen=40)
    other_batches = TrainCache(cfg, prepared, read=False, batch_chosen=64)
    assert full.key == same_full.key
    assert len({full.key, in_batches.key, other_batches.key}) == 3
    assert in_batches.parts["extra"] == {"batch_chosen": 40} and full.parts["extra"] == {}
