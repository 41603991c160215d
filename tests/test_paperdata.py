"""core/paperdata.py: without VALUEAUDIT_PAPER_DATA the paper's files are downloaded from its
repository at the pinned commit, each checked by sha256 and kept for the next time; a test
session in a fresh clone gets its data this way (tests/test_harness.py). The network is stood in
for by answering urlopen from the files of the paper-data folder."""
from __future__ import annotations

import io
import urllib.error

import pytest

from core import paperdata

RAW = ("https://raw.githubusercontent.com/brchristian/reward_models_inherit_value_biases_from_pretraining/"
       "5d8d2e9d879bf0060c791b11300f0efda42c9bcf/")
# The repository keeps the corpora under data/ and the prompts in a top-level config/ folder.
PINNED = {"corpora/dict_big2_nouns.csv": "data/corpora/dict_big2_nouns.csv",
          "config/prompts.yaml": "config/prompts.yaml"}


@pytest.fixture()
def github(monkeypatch, tmp_path, paper_data):
    """A stand-in for raw.githubusercontent.com serving the real files; returns the URLs asked for
    (`served` maps URL -> bytes and may be changed by a test)."""
    monkeypatch.delenv("VALUEAUDIT_PAPER_DATA")
    monkeypatch.setenv("VALUEAUDIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(paperdata, "SHA256", {rel: paperdata.SHA256[rel] for rel in PINNED})
    served = {RAW + repo_path: (paper_data / rel).read_bytes() for rel, repo_path in PINNED.items()}
    asked: list[str] = []

    def urlopen(url, timeout=None):
        asked.append(url)
        if url not in served:
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)
        return io.BytesIO(served[url])

    monkeypatch.setattr(paperdata.urllib.request, "urlopen", urlopen)
    return served, asked


def test_fetch_downloads_each_pinned_file_once_from_the_pinned_commit(github, tmp_path, paper_data):
    served, asked = github
    root = paperdata.fetch(tmp_path / "copy", list(PINNED))
    assert root == tmp_path / "copy"
    assert sorted(asked) == sorted(served)
    for rel in PINNED:
        assert (root / rel).read_bytes() == (paper_data / rel).read_bytes()
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == ["dict_big2_nouns.csv", "prompts.yaml"]

    asked.clear()
    assert paperdata.fetch(root) == root and asked == []           # kept: a later session downloads nothing
    (root / "config" / "prompts.yaml").write_text("changed: by hand\n")
    paperdata.fetch(root)
    assert asked == [RAW + "config/prompts.yaml"]                 # a damaged copy is fetched again
    assert (root / "config" / "prompts.yaml").read_bytes() == (paper_data / "config" / "prompts.yaml").read_bytes()
    with pytest.raises(paperdata.PaperDataError, match="not one of the paper's pinned files"):
        paperdata.fetch(root, ["reference/fig1_big2.json"])


def test_the_app_downloads_into_the_cache_the_same_way(github, tmp_path, paper_data):
    served, asked = github
    got = paperdata.path("config/prompts.yaml")
    assert got == tmp_path / "cache" / "paper" / "5d8d2e9d879b" / "config" / "prompts.yaml"
    assert asked == [RAW + "config/prompts.yaml"] and got.read_bytes() == served[RAW + "config/prompts.yaml"]
    assert paperdata.path("config/prompts.yaml") == got and len(asked) == 1


def test_a_download_that_is_not_the_pinned_file_is_refused_and_not_kept(github, tmp_path):
    served, _ = github
    served[RAW + "config/prompts.yaml"] += b"# one more line\n"
    with pytest.raises(paperdata.PaperDataError, match="checksum mismatch for config/prompts.yaml"):
        paperdata.fetch(tmp_path / "copy")
    assert not (tmp_path / "copy" / "config" / "prompts.yaml").exists()
    assert not list(tmp_path.rglob("*.part"))


def test_offline_the_error_is_one_line_naming_the_setting(github, monkeypatch, tmp_path):
    def offline(url, timeout=None):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(paperdata.urllib.request, "urlopen", offline)
    with pytest.raises(paperdata.PaperDataError) as e:
        paperdata.fetch(tmp_path / "copy")
    assert "VALUEAUDIT_PAPER_DATA" in str(e.value) and "\n" not in str(e.value)


def test_a_copy_serves_as_the_paper_data_folder(github, monkeypatch, tmp_path):
    """The app's listing of a folder (.listing.json) in a download folder is not a paper file."""
    root = paperdata.fetch(tmp_path / "copy")
    (root / "corpora" / ".listing.json").write_text("[]")
    monkeypatch.setenv("VALUEAUDIT_PAPER_DATA", str(root))
    assert paperdata.listdir("corpora") == ["dict_big2_nouns.csv"]
    assert paperdata.path("config/prompts.yaml") == root / "config" / "prompts.yaml"
