"""appkit's page helpers under Streamlit's AppTest: `link` skips only the error page_link raises
when the linked page is not in the navigation, and `guarded` turns ordinary errors into a
one-line message while st.stop still stops the page."""
from __future__ import annotations

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402


def _page_alone_links_to_compare():
    import appkit
    appkit.link("pages/compare.py", "Go to Compare")
    import streamlit as st
    st.write("after the link")


def _page_links_to_an_unsafe_path():
    import appkit
    appkit.link("pages/compare\x00.py", "bad")


def _guarded_page_that_stops_then_fails():
    import streamlit as st

    import appkit

    @appkit.guarded
    def body():
        st.write("before stop")
        st.stop()
        raise ValueError("never reached")
    body()


def _guarded_page_that_fails():
    import appkit

    @appkit.guarded
    def body():
        raise ValueError("first line\nsecond line")
    body()


def test_link_skipped_when_page_runs_alone():
    at = AppTest.from_function(_page_alone_links_to_compare, default_timeout=60).run()
    assert not at.exception
    assert [m.value for m in at.markdown] == ["after the link"]


def test_link_lets_other_streamlit_errors_through():
    at = AppTest.from_function(_page_links_to_an_unsafe_path, default_timeout=60).run()
    assert at.exception, "an unsafe page path must not be silently swallowed"


def test_guarded_lets_st_stop_through():
    at = AppTest.from_function(_guarded_page_that_stops_then_fails, default_timeout=60).run()
    assert not at.exception and not at.error
    assert [m.value for m in at.markdown] == ["before stop"]


def test_guarded_shows_first_line_only():
    at = AppTest.from_function(_guarded_page_that_fails, default_timeout=60).run()
    assert not at.exception
    assert len(at.error) == 1 and at.error[0].value.endswith(": first line")


def test_error_hints_never_suggest_what_the_mode_forbids(monkeypatch):
    """Issue 21: a shared server told visitors '…or give a local folder'. Every hint, in each
    mode: shared-mode hints name no folder and no server variable; the model-not-found
    message itself names no folder (the CLI adds its own hint)."""
    import appkit
    from core import errors, models
    from core.paperdata import PaperDataError
    from core.settings import SettingsError
    from core.store import StoreError
    kinds = [errors.ModelError("x"), SettingsError("x"), StoreError("x"), PaperDataError("x"), ValueError("x")]
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    assert set(appkit.HINTS["shared"]) == set(appkit.HINTS["local"])  # every error has a hint in each mode
    for hint in [appkit.hint_for(e) for e in kinds] + [appkit.hint(name) for name in appkit.HINTS["local"]]:
        hint = hint.lower()
        assert "folder" not in hint and "valueaudit_" not in hint and "debug" not in hint, hint
    monkeypatch.setenv("VALUEAUDIT_MODE", "local")
    assert "folder" in appkit.hint_for(errors.ModelError("x"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(errors.ModelError) as caught:
        models.read_config("no-such-org/no-such-model-21")
    assert "folder" not in str(caught.value) and "folder" in caught.value.cli_hint
