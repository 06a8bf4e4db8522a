"""One parser of the accepted `search.storage` forms (`store_urls.study_storage`): the search's
`resolve`, the preflight and the evaluate lock all read a value the same way."""

from pathlib import Path

import pytest

from pipeline.commands import preflight
from pipeline.search import storage as S
from pipeline.search.evaluate_lock import lock_file
from pipeline.store_urls import StudyStorage, sqlite_file, study_storage


@pytest.mark.parametrize("value, parsed", [
    ("x.journal", StudyStorage("x.journal", None)),
    ("journal:a/x.log", StudyStorage("a/x.log", None)),
    ("journal:///abs/x.journal", StudyStorage("/abs/x.journal", None)),
    ("sqlite:///s.db", StudyStorage(None, "sqlite:///s.db")),
    ("postgresql://u@h/db", StudyStorage(None, "postgresql://u@h/db"))])
def test_accepted_forms(value, parsed):
    assert study_storage(value) == parsed


@pytest.mark.parametrize("value", ["redis://x", "x.db", "journal:x.txt"])
def test_other_forms_are_refused_alike_by_resolve_and_preflight(tmp_path, value):
    with pytest.raises(ValueError, match="search.storage must be") as by_parser:
        study_storage(value)
    with pytest.raises(ValueError) as by_resolve:
        S.resolve(value, "st", tmp_path)
    with pytest.raises(ValueError) as by_preflight:
        preflight.check_storage_path(value)
    assert str(by_resolve.value) == str(by_preflight.value) == str(by_parser.value)
    assert not list(tmp_path.iterdir())


def test_sqlite_file_and_the_evaluate_lock_next_to_it(tmp_path):
    assert sqlite_file(f"sqlite:///{tmp_path}/s.db?timeout=5") == tmp_path / "s.db"
    assert sqlite_file("sqlite:///:memory:") is None and sqlite_file("postgresql://h/d") is None
    spec = S.resolve(f"sqlite:///{tmp_path}/s.db", "st", tmp_path)
    assert lock_file(spec, "st", Path("unused")) == tmp_path / "s.db.st.evaluate.lock"
