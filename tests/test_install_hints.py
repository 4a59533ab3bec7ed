"""Install hints work where the user is: the package is not on the package index, so every hint names an extra of a
clone (``pip install -e '.[extra]'``) or a package that is; and the optional real data sets are found by one rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import REALDATA_VAR, REPO, realdata, require_realdata

from dask_stats.errors import DatasetError
from dask_stats.video import BACKENDS, get_backend

tomllib = pytest.importorskip("tomllib")
EXTRAS = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
INDEX_NAME = re.compile(r"dask[-_]stats\[")  # `pip install 'dask-stats[...]'` asks the index for a package it lacks


def named_extras(text: str) -> set[str]:
    """The extras named in the pip commands of ``text``: '.[a,b]' and 'dist/....whl[a]'."""
    groups = re.findall(r"(?:\.|\.whl|\))\[([a-z0-9_,-]+)\]", text)
    return {name.strip() for group in groups for name in group.split(",")}


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_backend_install_hints_name_real_extras(name):
    hint = BACKENDS[name].install_hint
    assert "pip install" in hint and not INDEX_NAME.search(hint), hint
    assert named_extras(hint) <= EXTRAS, hint


@pytest.mark.parametrize("name", ["decord", "torchcodec"])
def test_a_missing_backend_says_how_to_install_it(name, monkeypatch):
    monkeypatch.setattr(BACKENDS[name], "available", classmethod(lambda cls: False))
    with pytest.raises(DatasetError) as info:
        get_backend(name)
    text = str(info.value)
    assert f"video backend {name!r} is not installed" in text
    assert f"pip install -e '.[{name}]'" in text and name in EXTRAS, text


def test_readme_install_commands_work_from_a_clone_or_a_wheel():
    text = (REPO / "README.md").read_text()
    assert "OWNER/dask_stats" not in text and "git+https://github.com/OWNER" not in text
    assert not INDEX_NAME.search(text), "the package is not on the package index: name a clone or a wheel"
    assert named_extras(text) <= EXTRAS
    assert "pip install -e '.[s3]'" in text and "dist/dask_stats-*.whl)[s3]" in text


def test_real_data_is_found_through_the_variable(tmp_path, monkeypatch):
    (tmp_path / "gr00t_pick_n_place").mkdir()
    monkeypatch.setenv(REALDATA_VAR, str(tmp_path))
    assert realdata() == tmp_path / "gr00t_pick_n_place" == require_realdata()


def test_missing_real_data_skips_saying_how_to_enable_it(tmp_path, monkeypatch):
    monkeypatch.delenv(REALDATA_VAR, raising=False)
    monkeypatch.setattr("helpers.REPO", tmp_path / "clone")  # no sibling shared folder
    with pytest.raises(pytest.skip.Exception) as info:
        require_realdata("no_such_set")
    assert f"set {REALDATA_VAR}=" in str(info.value)


def test_a_variable_naming_a_folder_without_the_set_fails(tmp_path, monkeypatch):
    monkeypatch.setenv(REALDATA_VAR, str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match="has no no_such_set/"):
        require_realdata("no_such_set")


def test_pyproject_extras_hold_what_the_hints_promise():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = " ".join(project["dependencies"])
    assert "decord" not in deps and any(d.startswith("decord") for d in project["optional-dependencies"]["decord"])
    assert "diagnostics" in deps and "bokeh" not in deps, "bokeh comes through dask[diagnostics]"
    assert Path(REPO / "scripts/test-lowest").is_file()
