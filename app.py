"""Entry point: `streamlit run app.py`. Builds the navigation; each page lives in pages/.

VALUEAUDIT_DB selects the database (default cache/valueaudit.duckdb)."""
from __future__ import annotations

import streamlit as st  # `streamlit run app.py` puts this folder on the path: pages import appkit and core

st.set_page_config(page_title="Value audit of reward models", page_icon=":material/balance:", layout="wide")

PAGES = {
    "Overview": [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    ],
    "Data": [
        st.Page("pages/models.py", title="Models", icon=":material/neurology:"),
        st.Page("pages/corpora.py", title="Corpora", icon=":material/menu_book:"),
        st.Page("pages/score.py", title="Score", icon=":material/play_circle:"),
    ],
    "Analysis": [
        st.Page("pages/compare.py", title="Compare", icon=":material/bar_chart:"),
        st.Page("pages/your_model.py", title="Your model", icon=":material/person_search:"),  # issue 21
        st.Page("pages/words.py", title="Words", icon=":material/text_fields:"),
        st.Page("pages/paired.py", title="Paired", icon=":material/compare:"),  # issue 15
        st.Page("pages/implicit_reward.py", title="Implicit reward", icon=":material/compare_arrows:"),
        st.Page("pages/training_dynamics.py", title="Training dynamics", icon=":material/show_chart:"),
        st.Page("pages/report.py", title="Report", icon=":material/description:"),
    ],
}

st.navigation(PAGES).run()
