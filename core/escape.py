"""Data shown as text, never as markup: the two escapes every view uses.

Why: words, categories, corpus descriptions, model names and prompt texts come from
whoever uploaded or typed them, and other visitors see them. Streamlit renders markdown in
st.markdown, captions, alerts and widget labels (links, images, emphasis, colour
directives); plotly.js renders a subset of HTML in every text, tick label, hover label,
legend entry and title (`<a href>`, `<b>`, `<br>`, ...). One visitor could plant a link or
an image that loads in another visitor's browser. So every piece of data that enters
markdown goes through `markdown`, and every piece that enters a plotly figure through
`plotly`; the markup around it is the code's own."""
from __future__ import annotations

import re

_MD_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")   # every ASCII punctuation character
_LINE_BREAKS = re.compile(r"[\r\n\t\v\f\u2028\u2029]+")


# Streamlit's markdown (remark-gfm) also turns bare URLs and e-mail addresses into links
# after parsing, escapes or not; an invisible word joiner (U+2060) breaks the patterns it
# looks for ("http://", "https://", "www.", "x@y") without changing what a reader sees.
WORD_JOINER = "\u2060"
_AUTOLINK = re.compile(r"(?i)(https?(?=\\:)|www(?=\\\.))|(?=\\@)")


def markdown(text) -> str:
    """`text` as markdown that shows exactly these characters: every ASCII punctuation
    character backslash-escaped (CommonMark allows an escape before any of them), so no
    link, image, emphasis, heading, list, table, HTML tag, math or colour directive can come
    from data; a word joiner after `http`/`https`/`www` and before `@`, so no bare URL or
    e-mail address becomes a link; line breaks become spaces (data never starts a block)."""
    s = "" if text is None else str(text)
    s = _MD_PUNCTUATION.sub(r"\\\1", _LINE_BREAKS.sub(" ", s))
    return _AUTOLINK.sub(lambda m: (m.group(1) or "") + WORD_JOINER, s)


def _plotly_one(value):
    if not isinstance(value, str):
        return value
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plotly(values):
    """Text for a plotly figure, shown as typed: `&`, `<` and `>` become entities, which
    plotly.js turns back into the characters without reading any tag. Takes one value, or
    a list / tuple / pandas Series or Index (escaped element by element); non-text values
    (numbers, None) pass unchanged."""
    if isinstance(values, str) or values is None:
        return _plotly_one(values)
    if hasattr(values, "map") and hasattr(values, "dtype"):  # a pandas Series or Index
        return values.map(_plotly_one)
    if isinstance(values, (list, tuple)):
        return type(values)(_plotly_one(v) for v in values)
    return _plotly_one(values)
