"""Every filter declared in indexer.filterspec reaches every surface: the sfx-search options,
the JSON API (GET parameters and POST body), the page's controls, `search.filters.Filters`,
and its SQL condition in the catalog. Adding a filter is its declaration and its condition."""

from __future__ import annotations

import contextlib
import json
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from indexer.catalog import Catalog, FileInfo, ModelRecord
from indexer.catalog.filters import CONDITIONS
from indexer.filterspec import FILTERS
from search import cli as search_cli
from search.filters import Filters
from search.web.app import create_app


def sample(spec, root: str):
    """A value of the filter's type that a user could give, as text and as the parsed value."""
    if spec.kind == "path":
        return root, root
    if spec.kind == "int":
        return str(int(spec.lo)), int(spec.lo)
    if spec.kind == "float":
        return "2.5", 2.5
    if spec.kind == "flag":
        return "1", True
    return "wav", ("wav",) if spec.multiple else "wav"


class Recorder:
    """Stands in for search.Library: records the filters each search was given."""

    def __init__(self, catalog, index_dir):
        self.catalog = catalog
        self.settings = SimpleNamespace(index_dir=index_dir)
        self.calls = []

    def search(self, *args, filters=None, **kw):
        self.calls.append(filters)
        return []

    similar = search


@pytest.fixture
def cat(tmp_path):
    c = Catalog.open(f"sqlite:///{tmp_path / 'index' / 'catalog.db'}")
    c.ensure_model(ModelRecord("m", "abc", {"x": 1}, 4))
    root = c.add_root(tmp_path / "lib")
    for i, name in enumerate(["a.wav", "b.flac"]):
        c.write_file(root.id, name, size=1, mtime_ns=1, content_hash=str(i), info=FileInfo(2.5, 1, 1, "PCM_16", "WAV"),
                     chunks=[(0, 0.0, 2.5)], vectors=np.eye(4, dtype=np.float32)[:1], metadata={})
    yield c
    c.close()


def test_each_filter_has_one_name_and_a_sql_condition():
    names = [f.name for f in FILTERS]
    assert len(set(names)) == len(names)
    assert set(CONDITIONS) == set(names)


def test_each_filter_is_an_option_of_the_commands_that_filter():
    for command in ("query", "similar"):
        params = {p.name: p for p in search_cli.main.commands[command].params}
        for spec in FILTERS:
            opt = params[spec.name]
            assert opt.opts == [spec.option] and opt.multiple == spec.multiple and opt.help == spec.help, spec.name


def test_each_filter_given_on_the_command_line_reaches_the_search(cat, tmp_path, monkeypatch):
    import search.query

    rec = Recorder(cat, tmp_path / "index")
    monkeypatch.setattr(search.query, "Library", SimpleNamespace(from_settings=lambda s: contextlib.nullcontext(rec)))
    monkeypatch.setenv("SFX_NO_SERVER", "1")
    root = cat.roots()[0].path
    for spec in FILTERS:
        text, value = sample(spec, root)
        r = CliRunner().invoke(search_cli.main, ["query", "door", spec.option, text, "--json"])
        assert r.exit_code == 0, (spec.name, r.output)
        got = rec.calls[-1]
        assert getattr(got, spec.name) == value and got.describe().startswith(spec.name.replace("_", "-")), spec.name


def test_each_filter_is_a_parameter_of_the_api_and_a_control_of_the_page(cat, tmp_path):
    rec = Recorder(cat, tmp_path / "index")
    client = TestClient(create_app(rec, index_dir=tmp_path / "index", allowed_hosts=["testserver"]))
    root = cat.roots()[0].path
    for spec in FILTERS:
        text, value = sample(spec, root)
        assert client.get("/api/search", params={"q": "door", spec.param: text}).status_code == 200, spec.name
        assert getattr(rec.calls[-1], spec.name) == value, spec.name
        body = {"q": "door", "filters": {spec.param: [text] if spec.multiple else value}}
        assert client.post("/api/search", json=body).status_code == 200, spec.name
        assert getattr(rec.calls[-1], spec.name) == value, spec.name
        if spec.kind in ("int", "float"):
            wrong = spec.lo - 1 if spec.hi is None else spec.hi * 10
            r = client.get("/api/search", params={"q": "door", spec.param: str(wrong)})
            assert r.status_code == 400 and spec.param in r.json()["error"], spec.name
    page = client.get("/").text
    config = json.loads(page.split('<script id="config" type="application/json">')[1].split("</script>")[0])
    assert [f["name"] for f in config["filters"]] == [spec.name for spec in FILTERS]
    for f in config["filters"]:
        if f["control"] == "select":
            assert f["options"], f["name"]  # roots / extensions to choose from


def test_each_filter_is_a_field_of_filters_and_selects_files(cat):
    root = cat.roots()[0].path
    assert Filters().empty() and Filters().file_ids(cat) == set(cat.filter_file_ids())
    everything = cat.filter_file_ids()
    assert len(everything) == 2
    for spec in FILTERS:
        _text, value = sample(spec, root)
        f = Filters(**{spec.name: value})
        assert not f.empty() and f.describe().startswith(spec.name.replace("_", "-")), spec.name
        got = f.file_ids(cat)
        assert got <= everything, spec.name
    assert Filters(ext=(".WAV",)).file_ids(cat) == {fid for fid, row in cat.files_by_ids(everything).items()
                                                   if row.rel == "a.wav"}
    assert Filters(min_duration=3.0).file_ids(cat) == set()
