"""Training dynamics (Figure 4, 5, A5, A6): how the Agency/Communion preference of a reward
model moves over its training checkpoints — your own runs (swept on the Score page or with
`python -m core sweep`) beside the paper's runs trained in-house on Gemma, Llama and Qwen
bases — which words moved most between the first and the last checkpoint, and where the
paper's runs end against their training-data size (Figure 4b). The paper's runs are
labelled by its manifest (generate_figure_4_and_A5.R), not by their file names."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

import appkit as ak
from core import charts, paperdata, settings, training, trajectory
from core import family as _family
from core.escape import markdown as md

VIEWS = ["Over training (Figure 4a)", "Words that moved (Figure 5)", "Against data size (Figure 4b)"]


# -- your runs ------------------------------------------------------------------------------------
def run_label(run_key: str, run: str) -> str:
    """A run as shown: its hub id, or its folder (on a shared server only the folder's name:
    visitors never see a server path)."""
    if run_key.startswith("hub:"):
        return run
    return (Path(run).name or run) if settings.shared() else run


def your_runs() -> pd.DataFrame:
    runs = ak.cached("runs")
    return runs.assign(label=[run_label(k, r) for k, r in zip(runs["run_key"], runs["run"])]) if not runs.empty else runs


def no_runs_yet() -> None:
    where = ("a hub id and its revisions" if settings.shared() else "a run folder (the Trainer's output_dir)")
    ak.empty_state("None of your training runs has been swept yet.",
                   f"On the Score page, open *A training run's checkpoints* and give {where}; or on the command "
                   "line: `python -m core sweep RUN --corpus big2-nouns`. Each checkpoint is scored as its own model.",
                   "pages/score.py", "Sweep a run on the Score page")


def trajectories(runs: pd.DataFrame, keys: list[str], corpus: str) -> list:
    out = []
    for k in keys:
        t = ak.cached("trajectory", k, corpus)
        if t is not None:
            out.append((runs.loc[runs["run_key"] == k, "label"].iloc[0], t))
    return out


def your_runs_over_training() -> None:
    st.subheader("Your training runs")
    runs = your_runs()
    if runs.empty:
        no_runs_yet()
        return
    c1, c2 = st.columns([2, 3])
    with c1:
        corpus = ak.corpus_picker("td-corpus")
    labels = dict(zip(runs["run_key"], runs["label"]))
    keys = c2.multiselect("Runs", list(labels), default=list(labels)[:6], format_func=labels.get, key="td-runs")
    if not keys:
        st.caption("Choose at least one run.")
        return
    trajs = trajectories(runs, keys, corpus)
    if not trajs:
        st.info(f"The chosen runs have no scores on {md(corpus)}; sweep them on this corpus (Score page).",
                icon=":material/info:")
        return
    points = pd.concat([t.frame().assign(run=label) for label, t in trajs], ignore_index=True)
    ak.family_legend(points["family"].dropna().unique())
    ak.plot(charts.trajectory_figure(points, f"Your runs over training — {corpus}"), key="td-yours")
    for label, t in trajs:
        st.text(f"{label}: {trajectory.sentence(t)}")
    st.caption("Each point is one checkpoint's Figure-1 value: within each prompt the corpus words are ranked by "
               "reward (1 = highest, ties averaged), the category's median rank is taken, and the prompts of a "
               "framing are averaged. Higher on the chart = ranked nearer 1: preferred on positive prompts, named the "
               "worst more readily on negative ones. Colour = the run's base family.")
    with st.expander("Data"):
        st.dataframe(points, hide_index=True, width="stretch")
        ak.downloads(points, "training_trajectories", "dl-traj")


# -- the paper's runs ------------------------------------------------------------------------------
@st.cache_data(show_spinner="Reading the paper's checkpoint scores…", ttl=600)
def paper_checkpoints() -> dict:
    """The paper's three checkpoint-score files, where they are here (downloaded at the
    pinned commit when VALUEAUDIT_PAPER_DATA is unset)."""
    return training.checkpoint_files(download=paperdata.local_root() is None)


@st.cache_data(show_spinner=False)
def paper_figure_4a(families: tuple[str, ...]) -> tuple[pd.DataFrame, int]:
    files = paper_checkpoints()
    return training.figure_4a({f: files[f]["frame"] for f in families if files[f]["frame"] is not None})


def import_files(files: dict) -> None:
    """Local mode: take the user's copy of a missing file, checked by its format (no sha256
    of these files is known here)."""
    missing = [f for f, v in files.items() if v["frame"] is None]
    if not missing or settings.shared():
        return
    with st.expander("Import the paper's checkpoint-score files"):
        st.caption("The files are data/reward_model_training/greatest_ever_one_across_checkpoints_<family>.parquet "
                   "in the paper's repository. Their checksums are not known here, so a file is accepted when it "
                   "has the paper's format (a token_decoded column and step-N score columns); its sha256 is shown "
                   "so you can compare it with the repository's.")
        for f in missing:  # why each is missing (not found, download failed); a path is data: escaped
            st.caption(md(f"{f}: {files[f]['message']}"))
        fam = st.selectbox("Base family", missing, key="td-import-fam")
        up = st.file_uploader("Parquet file", type=["parquet"], key="td-import-file")
        if up is not None and st.button("Import", key="td-import-go"):
            digest = training.import_checkpoint_file(fam, up.getvalue())
            paper_checkpoints.clear()
            paper_figure_4a.clear()
            st.success(f"Imported. sha256 {digest}")


def paper_over_training(td: pd.DataFrame) -> None:
    st.subheader("The paper's runs")
    files = paper_checkpoints()
    have = [f for f, v in files.items() if v["frame"] is not None]
    if {"Llama", "Gemma"} <= set(have):
        with_qwen = "Qwen" in have and st.toggle("Add Qwen (the paper's Figure A5a)", key="td-4a-qwen")
        fams = tuple(f for f in ("Gemma", "Llama", "Qwen") if f in have and (f != "Qwen" or with_qwen))
        d, n_tokens = paper_figure_4a(fams)
        points = d.rename(columns={"checkpoint": "step", "median_rank": "value", "base_model": "family"}).assign(
            run=d["base_model"], framing="greatest_ever_one")
        ak.family_legend(list(fams))
        ak.plot(charts.trajectory_figure(points, "Figure 4a — the paper's in-house RMs over training",
                                         y_title=f"Median rank (Big Two; 1 = best, {n_tokens:,} = worst)"),
                key="td-4a")
        st.caption("As generate_figure_4_and_A5.R computes it: tokens of the paper's token intersection, text "
                   "cleaned to ASCII, trimmed and lower-cased, joined to the expanded Big Two dictionary, ranked by "
                   "reward within each checkpoint (one prompt: greatest_ever_one), median rank per category. "
                   "File sha256: " + ", ".join(f"{f} {files[f]['sha256'][:12]}…" for f in fams) + ".")
    else:  # one sentence; each file's reason (a server path) only where the files can be imported
        missing = [f for f, v in files.items() if v["frame"] is None]
        st.caption("The paper's Figure 4a needs its checkpoint-score files for Llama and Gemma (one per base "
                   f"family, in the paper's repository); not here: {', '.join(missing)}."
                   + ("" if settings.shared() else " Import them below."))
    import_files(files)
    if td.empty:
        st.info("The paper's median-rank files (rank_results_*.csv) were not found. " + ak.hint("PaperDataError"),
                icon=":material/info:")
        return
    st.markdown("**One run of the paper's data-size ablation** (its median-rank files)")
    checkpoints_view(td)


def identical_note(sub: pd.DataFrame, td: pd.DataFrame) -> None:
    """Say so when this run's file is byte-identical to another run's (the paper's 13K and 27K)."""
    other = sub["identical_to"].dropna().unique()
    if len(other):
        twin = td.loc[td["file"] == other[0], "run"].iloc[0]
        st.warning(f"This run's file ({sub['file'].iloc[0]}) is byte-identical to the file of **{twin}** "
                   f"({other[0]}): the two runs show the same numbers, so they are not two independent results.",
                   icon=":material/content_copy:")


def checkpoints_view(td: pd.DataFrame) -> None:
    runs = (td[["run", "data_source", "data_size_k", "method"]].drop_duplicates()
            .sort_values(["method", "data_size_k", "data_source"]))
    labels = runs["run"].tolist()
    first = training.default_run(td)
    choice = st.selectbox("Training run", labels, key="td-run", index=labels.index(first) if first in labels else 0)
    sub = td[td["run"] == choice]
    fams = _family.order(sub["base_model"].dropna().unique())
    c1, c2 = st.columns(2)  # pills wrap on a narrow window; three multiselects cut 'Gemma' to 'G…'
    keep = c1.pills("Base families", fams, selection_mode="multi", default=fams, key="td-fams") or []
    cats = c2.pills("Categories", sorted(sub["category"].unique()), selection_mode="multi",
                    default=sorted(sub["category"].unique()), key="td-cats") or []
    identical_note(sub, td)
    sub = sub[sub["base_model"].isin(keep) & sub["category"].isin(cats)]
    ak.family_legend(keep)
    ak.plot(charts.training_figure(sub, f"Median rank over training — {choice}"), key="td-chart")
    st.caption("Median rank: within each checkpoint the Big Two expanded words are ranked by reward (1 = highest) "
               "and the category's median rank is shown, as in the paper's files; higher on the chart = the "
               "category is preferred. Solid = Agency, dotted = Communion.")
    if sub["checkpoint"].nunique() <= 1:
        st.info("This run has a single checkpoint, so there is no curve — only the final point.")
    with st.expander("Data"):
        st.dataframe(sub, hide_index=True, width="stretch")
        ak.downloads(sub, "training_dynamics", "dl-td")


# -- Figure 5: the words that moved -----------------------------------------------------------------
def movers_view() -> None:
    runs = your_runs()
    files = paper_checkpoints()
    sources = {f"run:{k}": f"Your run: {lb}" for k, lb in zip(runs.get("run_key", []), runs.get("label", []))}
    sources |= {f"paper:{f}": f"The paper's {f} RM ({'Figure A6' if f == 'Qwen' else 'Figure 5'})"
                for f, v in files.items() if v["frame"] is not None}
    if not sources:
        no_runs_yet()
        st.caption("The paper's Figure 5 needs its checkpoint-score files (see Over training).")
        return
    c1, c2, c3 = st.columns([3, 2, 1])
    src = c1.selectbox("Run", list(sources), format_func=sources.get, key="td-mv-src")
    n = int(c3.number_input("Words each way", 3, 30, 10, key="td-mv-n"))
    if src.startswith("paper:"):
        fam = src.split(":", 1)[1]
        mv = training.figure_5(files[fam]["frame"], n=n)
        title = f"Words that moved most — the paper's {fam} RM ({mv.attrs['first']} to {mv.attrs['last']})"
        c2.caption("Big Two nouns; one prompt (greatest_ever_one); token variants averaged, as "
                   "generate_figure_5_and_A6.py.")
        ak.plot(charts.movers_figure(mv, title, training.BIG2_COLORS), key="td-movers")
    else:
        with c2:
            corpus = ak.corpus_picker("td-mv-corpus")
        t = ak.cached("trajectory", src.split(":", 1)[1], corpus, n)
        if t is None or not (t.movers["up"] or t.movers["down"]):
            st.info(f"Nothing to compare on {md(corpus)}: the run needs two checkpoints scored on positive prompts "
                    "of this corpus.", icon=":material/info:")
            return
        mv = pd.DataFrame([{**m, "direction": d} for d in ("up", "down") for m in t.movers[d]])
        steps = [c["step"] for c in t.checkpoints]
        ak.plot(charts.movers_figure(mv, f"Words that moved most — {sources[src][10:]} (step {steps[0]:,} to "
                                         f"{steps[-1]:,})", training.BIG2_COLORS), key="td-movers")
        st.text(trajectory.sentence(t))
    st.caption("Rank change = the word's rank at the first checkpoint minus its rank at the last (mean rank over "
               "the positive prompts for your runs): right of zero, the reward model came to prefer the word later "
               "in training; left, it preferred it early. Colour = the word's category.")
    with st.expander("Data"):
        st.dataframe(mv, hide_index=True, width="stretch")
        ak.downloads(mv, "words_that_moved", "dl-movers")


def data_size_view(td: pd.DataFrame) -> None:
    """Figure 4b (Gemma and Llama), or with Qwen on the Bradley-Terry runs as Figure A5b."""
    if td.empty:
        ak.empty_state("The paper's training-dynamics files were not found.", ak.hint("PaperDataError"))
        return
    with_qwen = st.toggle("Add Qwen (the paper's Figure A5b: Bradley-Terry runs only)", key="td-qwen")
    fams = ("Gemma", "Llama", "Qwen") if with_qwen else ("Gemma", "Llama")
    d = training.figure_4b(td[td["method"] != "GRM"] if with_qwen else td, fams)
    ak.family_legend(list(fams))
    ak.plot(charts.figure_4b(d, "Final-checkpoint median rank against training-data size"), key="td-4b")
    st.caption("Each point is one run's last checkpoint; the dotted line joins the base families of one run. "
               "Sizes are thousands of preference pairs as the paper's manifest gives them; the GRM run "
               "(UltraFeedback + Skywork) is listed as 550K in the manifest while the paper's Figure 4b axis "
               "labels it 632k. The 13K and 27K runs come from byte-identical files.")
    with st.expander("Data"):
        st.dataframe(d, hide_index=True, width="stretch")
        ak.downloads(d, "figure_4b", "dl-4b")


@ak.guarded
def main() -> None:
    ak.header("Training dynamics", "Does reward training wash out the values a base model brought? Follow a reward "
              "model checkpoint by checkpoint: your own training runs (sweep their checkpoints on the Score page) "
              "beside the paper's, which trained reward models itself from Gemma, Llama and Qwen bases on the same "
              "preference data. If the curves of different bases stay apart, the base model's values survive.")
    try:
        td = ak.training_dynamics()
    except paperdata.PaperDataError:
        td = pd.DataFrame(columns=training.TD_COLUMNS)
    view = st.radio("View", VIEWS, horizontal=True, key="td-view")
    if view == VIEWS[0]:
        your_runs_over_training()
        paper_over_training(td)
    elif view == VIEWS[1]:
        movers_view()
    else:
        data_size_view(td)


main()
