"""The search's copy of the prepared data (`objective.without_test`) holds no test split; its
`digests` still name the train and dev splits it trains and scores on, and only those."""

from pathlib import Path

from pipeline import stages
from pipeline.config import load_config
from pipeline.search.objective import without_test

CONF = Path(__file__).resolve().parents[1] / "conf"


def test_digests_of_the_search_copy_are_the_train_and_dev_digests():
    prepared = stages.prepare(load_config((), conf_dir=CONF))
    searched = without_test(prepared)
    assert searched.test is None
    assert searched.digests == {"train": prepared.digests["train"],
                                "dev": prepared.digests["dev"]}
    assert set(prepared.digests) == {"train", "dev", "test"}
