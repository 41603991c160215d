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
