"""The paper's published files: read from VALUEAUDIT_PAPER_DATA when set, otherwise
downloaded once from the paper's repository at a pinned commit and checked by sha256.

Why pinned: an audit must be reproducible, so the corpora and published scores must be
byte-identical to those the paper used."""
from __future__ import annotations

import hashlib
import json
import os
import urllib.request
from pathlib import Path
from . import settings
from .errors import ValueAuditError

REPO = "brchristian/reward_models_inherit_value_biases_from_pretraining"
COMMIT = "5d8d2e9d879bf0060c791b11300f0efda42c9bcf"
RAW_URL = f"https://raw.githubusercontent.com/{REPO}/{COMMIT}/{{path}}"
API_URL = f"https://api.github.com/repos/{REPO}/contents/{{path}}?ref={COMMIT}"
ENV = "VALUEAUDIT_PAPER_DATA"

# sha256 of the files at COMMIT, relative to the repository's data/ folder; config/ is the
# repository's top-level config/ folder (the local layout puts it beside the data folders).
SHA256 = {
    "corpora/dict_big2_nouns.csv": "186886a25b2f03ea3ec7e78fad71fabee408e3b5ec1758683461df4359b45435",
    "corpora/dict_big2_expanded.csv": "9554698f6b7dd619853a7c129db977b59884560e211e75699e2b9c4b746dd8f1",
    "corpora/moral-foundations-dictionary-20.dicx": "973957f99129b324c8a4ebf3fcb7ed4e1f9f017b2d041f50288f991b0844ce7a",
    "corpora/token_intersection.csv": "f5faabb094332b36528c21bfe4fe96532b510f5e3bebb16794560e4b1835814c",
    "config/prompts.yaml": "23d866d2152824218785408897967fb8ae8a90acf8755e28dc18cb993e2cf5b5",
    "config/models.yaml": "00e75ab4562fec6968987133790f68920bc0d3497fc799c4794444a182deaa8c",
    "reward_model_training/rank_results_grm_80k.csv": "5c3483e286ef5f4233948de59333cf4b5ef755cff1d5c30ebb49a908bc4ff2b5",
    "reward_model_training/rank_results_sky_80k.csv": "4674ea69eb3265b1738ebb790833e3169a5ab94dafe7a86434f8587c991b4fc2",
    "reward_model_training/rank_results_uf_100.csv": "8d0a25dcedb785f02668fb5b2935c3d85c0d9a918b19cd870ba22de52b88138e",
    "reward_model_training/rank_results_uf_13.csv": "905dbc2fa37577b7f69901d967c445c4df0699176dc2e4c540b938b4256347ba",
    "reward_model_training/rank_results_uf_27.csv": "905dbc2fa37577b7f69901d967c445c4df0699176dc2e4c540b938b4256347ba",
    "reward_model_training/rank_results_uf_54.csv": "80b4d0b88ffec4d3859b756f32f1d1191ea359d0e4da29ccce54817857f43e9f",
    "reward_model_scores/dict_big2_nouns/big2_rewards_LxzGordon_URM-LLaMa-3.1-8B.csv": "c699e86fcbe9a6469956eada8b0c0038cdf09e265d74f85201643c80005551a5",
    "reward_model_scores/dict_big2_nouns/big2_rewards_RLHFlow_ArmoRM-Llama3-8B-v0.1.csv": "f5082b17fb9b6793cab814b217a96c534e1eb7cb907e9fd68fbff01d5fb79bc0",
    "reward_model_scores/dict_big2_nouns/big2_rewards_Ray2333_GRM-Llama3-8B-rewardmodel-ft.csv": "e9d6a28b9af3336f7065820fcd4ab1ac1e4c1b42c128656887b17d98f816271b",
    "reward_model_scores/dict_big2_nouns/big2_rewards_Ray2333_GRM-Llama3.2-3B-rewardmodel-ft.csv": "ef6d34263d3d866e31a3f08e4c344ae7e7a6701380eb75baaa67ec7acec1770c",
    "reward_model_scores/dict_big2_nouns/big2_rewards_Ray2333_GRM-gemma2-2B-rewardmodel-ft.csv": "1ad021d4a7a5f5da2a9a2cd87f452b87e6f597cf013ab57bddf39030704d05c9",
    "reward_model_scores/dict_big2_nouns/big2_rewards_Skywork_Skywork-Reward-Gemma-2-27B-v0.2.csv": "dfa9220bd5a6df92d0e343a944746f9cd82e66c879f43689ee3fa3e4618f173b",
    "reward_model_scores/dict_big2_nouns/big2_rewards_Skywork_Skywork-Reward-Gemma-2-27B.csv": "e735023066fea2d81f802e3d20f4366b8e7d4202ec08a7875d10f695f3a7e46e",
    "reward_model_scores/dict_big2_nouns/big2_rewards_Skywork_Skywork-Reward-Llama-3.1-8B-v0.2.csv": "102a77636bfc228db2da8e28094a1f6d846c60ca6c244190593ed2f9606eb1ae",
    "reward_model_scores/dict_big2_nouns/big2_rewards_nicolinho_QRM-Gemma-2-27B.csv": "fac8cb5e475ae5c17539ea482290c37417f3d28a49ed27f00ae1287e86c6dfc5",
    "reward_model_scores/dict_big2_nouns/big2_rewards_nicolinho_QRM-Llama3.1-8B.csv": "7b3d8c82d637bb1c4e2210ba75b214a929e01ba3aca115d52125566f38d7e3a2",
    # The MFD 2.0 run: its folder holds files named MFD20_rewards_* and big2_rewards_*.
    "reward_model_scores/dict_MFD_20/MFD20_rewards_Skywork_Skywork-Reward-Gemma-2-27B-v0.2.csv": "3f8cf54b64299dd856127a30aa1c278f55a2ced95f6d49ac127358b786f2373c",
    "reward_model_scores/dict_MFD_20/MFD20_rewards_Skywork_Skywork-Reward-Gemma-2-27B.csv": "aa12d99c3488643aff36f88ff094e910843e2d9994b251019bc3ebc0a68285ad",
    "reward_model_scores/dict_MFD_20/MFD20_rewards_Skywork_Skywork-Reward-Llama-3.1-8B-v0.2.csv": "296ca9662672a491b04352cfaa214d46dda6041c637ba6ec977fbf79c08531cf",
    "reward_model_scores/dict_MFD_20/MFD20_rewards_nicolinho_QRM-Gemma-2-27B.csv": "6c8a4dcdbdf2a5c3972a5a09906d47cfb9f7c990650fdb9678cd6516f3ae874e",
    "reward_model_scores/dict_MFD_20/big2_rewards_LxzGordon_URM-LLaMa-3.1-8B.csv": "3771b16642a259c750597c5b5691615b1a0ad6c42fc2611c99cea5da003861ce",
    "reward_model_scores/dict_MFD_20/big2_rewards_RLHFlow_ArmoRM-Llama3-8B-v0.1.csv": "e5a9b38338493dcc80f1633d89a8760ca39af203e264f33aecdf5f2361f68ef9",
    "reward_model_scores/dict_MFD_20/big2_rewards_Ray2333_GRM-Llama3-8B-rewardmodel-ft.csv": "ec658f0169888e357530a8861aeb06fe1e8a31054f8517bdeb44168dab57420e",
    "reward_model_scores/dict_MFD_20/big2_rewards_Ray2333_GRM-Llama3.2-3B-rewardmodel-ft.csv": "286f99e2a4bd08c81de3f89dd45024a7fc4edcc7485e50e3677c16d60f20bd0e",
    "reward_model_scores/dict_MFD_20/big2_rewards_Ray2333_GRM-gemma2-2B-rewardmodel-ft.csv": "929187da67c99474e3793732e1fcc9e156d8835efa14c0187a59e92bf4822a16",
    "reward_model_scores/dict_MFD_20/big2_rewards_nicolinho_QRM-Llama3.1-8B.csv": "b7f86be0e77bd6160a59af8ce122ff02703e2f64a64639a2f0f12f156fb774ed",
}


# Files of the paper's data/ at COMMIT whose sha256 is not known here (not in the offline copy
# this was built from, never seen online): downloaded or imported, each is accepted by its
# format (the check each caller passes to `unpinned_path`) and its sha256 is shown beside it,
# so it can be added to SHA256 above once seen online.
UNPINNED = (
    "reward_model_training/greatest_ever_one_across_checkpoints_llama.parquet",
    "reward_model_training/greatest_ever_one_across_checkpoints_gemma.parquet",
    "reward_model_training/greatest_ever_one_across_checkpoints_qwen.parquet",
)


class PaperDataError(ValueAuditError, RuntimeError):
    """A paper file could not be found, downloaded or verified."""


def cache_dir() -> Path:
    """Folder for downloads: VALUEAUDIT_CACHE, else cache/ beside the project."""
    return settings.path("VALUEAUDIT_CACHE")


def download_root() -> Path:
    """Where downloads go, laid out like a VALUEAUDIT_PAPER_DATA folder (one folder per pinned commit)."""
    return cache_dir() / "paper" / COMMIT[:12]


def _repo_path(rel: str) -> str:
    """The file's path in the paper's repository: config/ sits at the top, the rest under data/."""
    return rel if rel.split("/", 1)[0] == "config" else f"data/{rel}"


def local_root() -> Path | None:
    root = settings.get(ENV).strip()
    return Path(root).expanduser() if root else None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def path(rel: str) -> Path:
    """Local path of the paper file `rel` (relative to the repo's data/ folder)."""
    root = local_root()
    if root is not None:
        p = root / rel
        if not p.is_file():
            raise PaperDataError(f"{p} not found: {ENV} must name a folder laid out like the paper's data/")
        return p
    return _fetch(rel, download_root() / rel)


def _fetch(rel: str, dest: Path) -> Path:
    """The pinned file `rel` at `dest`: kept when an intact copy is there, else downloaded and checked."""
    if dest.is_file() and (rel not in SHA256 or _sha256(dest) == SHA256[rel]):
        return dest
    _download(RAW_URL.format(path=_repo_path(rel)), dest)
    if rel in SHA256 and _sha256(dest) != SHA256[rel]:
        dest.unlink(missing_ok=True)
        raise PaperDataError(f"checksum mismatch for {rel}: the download was not the pinned file")
    return dest


def listdir(rel: str) -> list[str]:
    """File names in a folder of the paper's data/ (local folder or GitHub listing)."""
    root = local_root()
    if root is not None:
        d = root / rel
        return sorted(p.name for p in d.iterdir() if p.is_file() and not p.name.startswith(".")) if d.is_dir() else []
    listing = download_root() / rel / ".listing.json"
    if not listing.is_file():
        _download(API_URL.format(path=_repo_path(rel)), listing)
    entries = json.loads(listing.read_text())
    return sorted(e["name"] for e in entries if e.get("type") == "file")


def fetch(folder: Path, files=None) -> Path:
    """Download the pinned files (all of SHA256, or those named in `files`) into `folder`, laid
    out like a VALUEAUDIT_PAPER_DATA folder, each checked by sha256; intact copies already there
    are kept, so a second call downloads nothing. Why: a copy made once serves offline later
    (the test suite makes one this way in a fresh clone)."""
    folder = Path(folder)
    for rel in (SHA256 if files is None else files):
        if rel not in SHA256:
            raise PaperDataError(f"{rel} is not one of the paper's pinned files")
        _fetch(rel, folder / rel)
    return folder


def _download(url: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(f"{dest.suffix}.{os.getpid()}.part")  # two processes downloading at once never mix
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
            while block := r.read(1 << 20):
                f.write(block)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise PaperDataError(
            f"could not download {url} ({e}); without internet, set {ENV} to a copy of the paper's data/ folder"
        ) from None
    tmp.replace(dest)


# -- files without a known sha256 (UNPINNED) ------------------------------------------------
def imported_path(rel: str) -> Path:
    """Where a downloaded or imported unpinned file is kept (the download folder, beside the
    pinned files; never inside VALUEAUDIT_PAPER_DATA, which may be read-only)."""
    return cache_dir() / "paper" / COMMIT[:12] / rel


def unpinned_path(rel: str, check, download: bool = True) -> Path:
    """Local path of an unpinned paper file: from VALUEAUDIT_PAPER_DATA, else imported or
    downloaded before, else (when `download`) downloaded now at the pinned commit. Every
    copy must pass `check(path)` (raises PaperDataError: the file is not in the expected
    format); a download that fails the check is deleted."""
    if rel not in UNPINNED:
        raise PaperDataError(f"{rel} is not one of the paper's unpinned files")
    root = local_root()
    if root is not None and (root / rel).is_file():
        check(root / rel)
        return root / rel
    dest = imported_path(rel)
    if dest.is_file():
        check(dest)
        return dest
    if not download or root is not None:
        where = f"{root / rel} not found" if root is not None else f"{rel} was not downloaded"
        raise PaperDataError(f"{where}: import the file (Training dynamics page, local mode) or put it there")
    _download(RAW_URL.format(path=rel), dest)
    try:
        check(dest)
    except PaperDataError:
        dest.unlink(missing_ok=True)
        raise
    return dest


def import_unpinned(rel: str, data: bytes, check) -> Path:
    """Keep a file the user gives as the paper's `rel` once `check` accepts it (its format;
    no sha256 is known to compare with). Returns where it is kept."""
    if rel not in UNPINNED:
        raise PaperDataError(f"{rel} is not one of the paper's unpinned files")
    dest = imported_path(rel)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + f".{os.getpid()}.part")
    tmp.write_bytes(data)
    try:
        check(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(dest)
    return dest


def sha256_of(path: Path) -> str:
    """The sha256 of a file (shown beside an unpinned file, to be pinned once seen online)."""
    return _sha256(path)
