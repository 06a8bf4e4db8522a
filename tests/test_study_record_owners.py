"""The study record no longer names the owner of a parent run (record version 3): the owner
is the run's `pipeline.owner` tag, which the recovery reads. Owners an older version recorded
(version 2: in each `parent_runs` entry) are still read and kept, because a parent opened
before the tag existed is judged by them."""

import io
from pathlib import Path

import optuna
from mlflow.tracking import MlflowClient

from pipeline.search import storage as S
from pipeline.search.record import VERSION, ParentRun, StudyRecord, add_parent

CONF = Path(__file__).resolve().parents[1] / "conf"


def _new_study(tmp_path, name="s") -> tuple[optuna.Study, object]:
    spec = S.resolve(str(tmp_path / "s.journal"), name, tmp_path)
    return optuna.create_study(study_name=name, storage=S.open_storage(spec)), spec


def _write_version_2(study, parents: list[dict]) -> None:
    """The keys the version-2 search wrote: every parent with its owner (null: before owners)."""
    study.set_user_attr("base_config", "seed: 3\n")
    study.set_user_attr("parent_runs", parents)
    study.set_user_attr("search_experiment_id", "7")
    study.set_user_attr("space", "x: 1\n")
    study.set_user_attr("target_trials", 9)
    study.set_user_attr("record_version", 2)


def test_version_3_is_the_current_record():
    assert VERSION == 3


def test_a_version_2_study_keeps_its_owners_and_new_parents_get_none(tmp_path):
    study, _ = _new_study(tmp_path)
    _write_version_2(study, [{"run_id": "p1", "owner": None},
                             {"run_id": "p2", "owner": "h:1:2"}])
    assert StudyRecord.load(study).parent_runs == (ParentRun("p1", None),
                                                   ParentRun("p2", "h:1:2"))
    after = add_parent(study, "p3", "8", "x: 2\n", 12)
    assert study.user_attrs["parent_runs"] == [{"run_id": "p1"},
                                               {"run_id": "p2", "owner": "h:1:2"},
                                               {"run_id": "p3"}]
    assert study.user_attrs["record_version"] == 3 == after.version
    assert after.parent_runs == (ParentRun("p1"), ParentRun("p2", "h:1:2"), ParentRun("p3"))
    assert after.parent_run_id == "p3"


def test_an_untagged_parent_of_a_version_2_study_is_still_judged_by_its_recorded_owner(
        tmp_path, gone_owner):
    """The recovery's one use of a recorded owner: a parent run without the tag (opened
    before it existed). A dead owner's, and on a journal an unowned one's, are ended; a live
    owner's is not. A version-3 parent carries the tag, so its entry needs no owner."""
    from pipeline.owner import owner
    from pipeline.search.recovery import _untagged_dead

    study, spec = _new_study(tmp_path)
    _write_version_2(study, [{"run_id": "dead", "owner": gone_owner},
                             {"run_id": "live", "owner": owner()},
                             {"run_id": "before_owners", "owner": None}])
    add_parent(study, "new", "8", "x: 2\n", 12)
    assert _untagged_dead(study, spec) == {"dead", "before_owners", "new"}
    # "new" has the tag, so end_abandoned_runs judges it by the tag alone (test below)


def test_a_search_records_its_parent_without_owner_and_tags_the_run(search_cfg, tracking_uri):
    from pipeline.owner import owner
    from pipeline.search.space import load_space
    from pipeline.search.sweep import run_search
    from pipeline.tracking.recovery import OWNER, end_abandoned_runs

    cfg = search_cfg("search.n_trials=1", "search.pruner.name=none", "search.trial_figures=none")
    space, text = load_space(cfg.search.space, CONF)
    result = run_search(cfg, space, text, progress=False, out=io.StringIO())
    spec = S.resolve(cfg.search.storage, "tiny", Path("."))
    study = optuna.load_study(study_name="tiny", storage=S.open_storage(spec))
    assert study.user_attrs["parent_runs"] == [{"run_id": result.parent_run_id}]
    assert study.user_attrs["record_version"] == VERSION
    client = MlflowClient()
    assert client.get_run(result.parent_run_id).data.tags[OWNER] == owner()
    # a RUNNING tagged parent of a live owner is left alone even when named as untagged-dead
    # (the journal's reading of an entry without owner): the tag decides
    live = client.create_run(result.search_experiment_id, tags={OWNER: owner()}).info.run_id
    assert end_abandoned_runs([result.search_experiment_id], untagged_dead={live}) == []
    assert client.get_run(live).info.status == "RUNNING"
