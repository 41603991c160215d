"""A store full of hostile data (issue 25): words, categories, a corpus description, model
names and prompts that hold links, images, emphasis and HTML tags, for the escaping tests
(AppTest in tests/test_escape.py, a real browser in tests/test_browser_security.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core import logprobs, prompts
from core.store import Store

EVIL = "evil.example"
HOSTILE = [f"<a href=https://{EVIL}/a>wa</a>", f"<img src=https://{EVIL}/b.png>", f"[wc](https://{EVIL}/c)",
           f"![wd](https://{EVIL}/d.png)", "**boldx**", f"www.{EVIL}", f"https://{EVIL}/plain",
           "a_b_c & <b>x</b>", "$x$ :red[y] `z` # h", "line\nbreak"]
CATEGORIES = [f"Agency<img src=https://{EVIL}/cat.png>", f"[Communion](https://{EVIL}/cat)"]
DESCRIPTION = (f"<img src=https://{EVIL}/t.png> [Log in again](https://{EVIL}/login) "
               f"![i](https://{EVIL}/i.png) **boldx** https://{EVIL}/plain")
MODELS = [(f"org/rm-[a](https://{EVIL}/m)", "llama"), ("org/rm-b**boldx**", "llama"),
          (f"org/<img src=https://{EVIL}/g.png>", "gemma"), ("org/rm_d_", "gemma")]


def build(db: Path) -> Path:
    """A saved corpus 'hostile' of hostile words and categories with a hostile description,
    four RMs (two families, hostile names) scored on it with a hostile prompt among the
    paper's, and two LMs with hostile vocabularies and scores."""
    store = Store(db)
    words = HOSTILE[:-1] + ["love", "power", "family", "success", "kindness", "freedom"]
    cats = [CATEGORIES[i % 2] for i in range(len(words))]
    store.save_corpus("hostile", pd.DataFrame({"word": words, "category": cats, "subcategory": ""}), DESCRIPTION)
    plist = [p for p in prompts.paper_prompts() if p.prompt_id in
             ("greatest_ever_one", "best_ever_one", "worst_ever_one", "bad_ever_one")]
    plist.append(prompts.Prompt(f"[p](https://{EVIL}/p)", f"What is <a href=https://{EVIL}/q>best</a>?", "positive"))
    rng = np.random.default_rng(0)
    for name, fam in MODELS:
        key = f"hub:{name}@x~float32"
        store.upsert_model(key, name, "rm", fam)
        store.add_scores(key, "rm", pd.DataFrame([{"prompt_id": p.prompt_id, "prompt": p.text, "response": w,
                                                   "value": float(rng.normal())} for p in plist for w in words]))
    lms = ((f"meta-llama/L-[x](https://{EVIL}/l)", "llama"), (f"google/G-<img src=https://{EVIL}/g>", "gemma"))
    for name, fam in lms:
        key = f"hub:{name}@x~float32"
        store.upsert_model(key, name, "lm", fam)
        store.add_scores(key, "lm", pd.DataFrame([{"prompt_id": p.prompt_id, "prompt": p.text, "response": w,
                                                   "value": float(-rng.uniform(1, 9))} for p in plist for w in words]))
        logprobs.put_vocab(store, key, pd.DataFrame({"token_id": range(len(words)), "token_name": words,
                                                     "token_decoded": words}))
        for p in plist[:2]:
            logprobs.put_prompt(store, key, p, np.arange(len(words)), -rng.uniform(1, 9, len(words)))
    return db
