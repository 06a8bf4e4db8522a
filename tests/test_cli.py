"""The command line as a user meets it: where the config comes from, what the help calls us."""

import argparse
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pipeline.cli import build_parser, main
from pipeline.commands import PACKAGED_CONF, conf_dir

ROOT = Path(__file__).resolve().parents[1]


def _args(**kw):
    return argparse.Namespace(**{"conf_dir": None, **kw})


def test_conf_dir_flag_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)                                # ./conf exists here, the flag still wins
    assert conf_dir(_args(conf_dir=tmp_path)) == tmp_path


def test_working_directory_conf_beats_the_packaged_one(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "base.yaml").write_text("seed: 5\n")
    monkeypatch.chdir(tmp_path)
    assert conf_dir(_args()) == Path("conf")


def test_a_conf_dir_without_base_yaml_is_not_taken_for_a_config(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()                            # someone else's conf/ (e.g. nginx)
    monkeypatch.chdir(tmp_path)
    assert conf_dir(_args()) == PACKAGED_CONF


def test_packaged_config_is_the_top_level_conf():
    for name in ("base.yaml", "presets/rings_init.yaml", "search/default.yaml"):
        assert (PACKAGED_CONF / name).read_bytes() == (ROOT / "conf" / name).read_bytes()


def test_every_committed_config_file_is_shipped_as_package_data():
    """A new conf/<dir>/ would silently be missing from the wheel: the patterns must cover it."""
    import tomllib

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["pipeline"]
    shipped = {p.relative_to(ROOT / "pipeline") for pat in patterns
               for p in (ROOT / "pipeline").glob(pat)}
    committed = {Path("conf") / p.relative_to(ROOT / "conf") for p in (ROOT / "conf").rglob("*.yaml")
                 if "local" not in p.relative_to(ROOT / "conf").parts}
    assert committed and committed == shipped


def test_validation_error_from_any_directory_uses_the_packaged_config(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--quiet", "regularization.keep_prob=1.5"]) == 2
    assert capsys.readouterr().err == "error: regularization.keep_prob must be in (0, 1], got 1.5\n"
    assert list(tmp_path.iterdir()) == []                  # nothing created


def test_unknown_preset_lists_the_packaged_presets(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--preset", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: preset must be one of ['digits', ") and "'rings_init'" in err


@pytest.mark.parametrize("prog", ["nn-pipeline", "python -m pipeline"])
def test_help_names_the_program(prog):
    usage = build_parser(prog)._subparsers._group_actions[0].choices["train"].format_usage()
    assert usage.startswith(f"usage: {prog} train [-h] [--preset NAME] [--conf-dir DIR]")


def test_console_script_default_and_module_name(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert capsys.readouterr().out.startswith("usage: nn-pipeline train")
    out = subprocess.run([sys.executable, "-m", "pipeline", "search", "--help"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("usage: python -m pipeline search")


@pytest.mark.slow
def test_wheel_ships_the_config(tmp_path):
    """A real non-editable wheel (built from a copy: building in the checkout writes build/ and
    *.egg-info into it) holds conf/ under pipeline/conf, byte for byte, and no conf/local."""
    src = tmp_path / "src"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        path = ROOT / name
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            (src / name).symlink_to(path.readlink())
        elif path.is_file():
            shutil.copy2(path, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(tmp_path / "dist"), str(src)], check=True, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("nn_pipeline-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    conf = {n for n in names if n.startswith("pipeline/conf/")}
    expected = {f"pipeline/conf/{p.relative_to(ROOT / 'conf')}" for p in (ROOT / "conf").rglob("*.yaml")
                if "local" not in p.relative_to(ROOT / "conf").parts}
    assert conf == expected
    with zipfile.ZipFile(wheel) as z:
        assert z.read("pipeline/conf/base.yaml") == (ROOT / "conf" / "base.yaml").read_bytes()
