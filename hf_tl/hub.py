"""Publish run directories (and comparison folders) to the Hugging Face Hub, and load runs back from it.

Everything goes through ``huggingface_hub``: the token comes from where it looks (``HF_TOKEN``, the login cache),
``HF_ENDPOINT`` names another Hub-compatible server, and a push of unchanged files makes no commit. A push that
fails is retried, then stops with one sentence; the local run is only read, never changed.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from hf_tl.errors import HfTlError

# Resumable states stay local: they are not the model (fnmatch: "*" also crosses "/", so nested runs match too).
IGNORE = ["checkpoints/*", "*/checkpoints/*", "*.previous-*", "*.previous-*/*", ".cache/*", "*/.cache/*"]
# Not the run: the lock of a run writing (a push at the end of training holds it) and a killed writer's leftovers.
LOCAL_ONLY = [".hf_tl.lock", "*/.hf_tl.lock", "*.tmp-*", "*.tmp-*/*", "*.partial/*"]
ATTEMPTS = 3
TEXT_SUFFIXES = {".json", ".jsonl", ".yaml", ".yml", ".md", ".txt", ".csv", ".tsv"}
MAX_SCRUBBED = 20 * 2**20  # larger text files (prediction dumps) are uploaded as they are
# Files a tokenizer reads: their tokens ("</s>", "/>") are not paths and must reach the Hub byte for byte.
TOKENIZER_FILES = {"tokenizer.json", "tokenizer_config.json", "vocab.json", "vocab.txt", "merges.txt",
                   "special_tokens_map.json", "added_tokens.json", "chat_template.json"}
# An absolute POSIX path: a "/" that starts a token (not after a word character, ":", "/", ".", "~", "-" or "<": not
# a URL, a relative path, "and/or" or a closing tag), then two or more path segments (/home/x, /tmp/x/run).
ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~<-])/(?:[^\s\"'`,;()\[\]{}<>|*?/\\]+/)+[^\s\"'`,;()\[\]{}<>|*?/\\]+")


def _endpoint() -> str | None:
    return os.environ.get("HF_ENDPOINT") or None


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _check_online() -> None:
    if _offline():
        raise HfTlError("The Hugging Face Hub is switched off (HF_HUB_OFFLINE=1); unset it to push or load from the "
                        "Hub.")


def _clean(message: str, token: str | None) -> str:
    """The first line of an error, with every token hf_tl could have used removed."""
    from huggingface_hub import get_token

    first = (message.splitlines() or [""])[0]
    for secret in {token, get_token(), os.environ.get("HF_TOKEN"), os.environ.get("HUGGING_FACE_HUB_TOKEN")}:
        if secret:
            first = first.replace(secret, "***")
    return first


def push_folder(folder: str | Path, repo_id: str, private: bool = False, token: str | None = None,
                commit_message: str | None = None, retry_wait: float = 2.0) -> str:
    """Create the repo (if needed) and upload ``folder`` to it, main process only.

    Args:
        folder: A finished run directory or a comparison folder.
        repo_id: ``user/name`` on the Hub.
        private: Create the repo as private (an existing repo keeps its visibility).
        token: A Hub token; default: ``HF_TOKEN`` or the huggingface_hub login.
        commit_message: Default: "Upload hf_tl run NAME".
        retry_wait: Seconds before the first retry (doubled after each failure).

    Returns:
        The URL of the commit (the last one when nothing changed).

    Raises:
        HfTlError: for a folder that is not a finished run or comparison, offline mode, or a push that fails
            ``ATTEMPTS`` times.
    """
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not (folder / "eval_results.json").is_file() and not (folder / "table.md").is_file():
        raise HfTlError(f"'{folder}' is neither a finished run (no eval_results.json) nor a comparison folder (no "
                        f"table.md); push the output_dir of a completed run or compare.")
    _check_online()
    skipped = not_regular_files(folder)
    if skipped:
        print(f"hf_tl: not uploading {len(skipped)} entr{'y' if len(skipped) == 1 else 'ies'} that are not regular "
              f"files inside the run (symbolic links and the like): {', '.join(skipped)}")
    # A skipped folder link is excluded with everything under it.
    ignore = [*IGNORE, *LOCAL_ONLY, *skipped, *(f"{name}/*" for name in skipped)]
    operations = _upload_operations(folder, ignore)
    api = HfApi(endpoint=_endpoint(), token=token)
    last = None
    for attempt in range(1, ATTEMPTS + 1):
        try:
            api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            info = api.create_commit(repo_id, operations=operations, repo_type="model",
                                     commit_message=commit_message or f"Upload hf_tl run {folder.resolve().name}")
            return info.commit_url
        except Exception as err:  # network, HTTP and server errors alike: retry, then one clear sentence
            last = err
            if attempt < ATTEMPTS:
                time.sleep(retry_wait * 2 ** (attempt - 1))
    raise HfTlError(f"Could not push '{folder}' to '{repo_id}' after {ATTEMPTS} attempts "
                    f"({type(last).__name__}: {_clean(str(last), token)}); the local "
                    f"run is unchanged, so push it again later with: hf-tl push {folder} {repo_id}")


def scrub_paths(text: str, folder: Path) -> str:
    """``text`` with every absolute local path replaced: by its path inside ``folder`` when it lies there, else by
    its last component (a run's lineage, config and card name folders of the machine that trained it)."""
    root = folder.resolve()

    def local(match: re.Match) -> str:
        path = Path(match.group())
        try:
            inside = path.resolve().relative_to(root).as_posix()
            return inside if inside != "." else root.name
        except (ValueError, OSError):
            return path.name or match.group()

    return ABSOLUTE_PATH.sub(local, text)


def _upload_operations(folder: Path, ignore: list[str]) -> list:
    """One commit operation per file to upload; text files carry no absolute local path (see :func:`scrub_paths`).

    The same files ``HfApi.upload_folder`` would take with these ignore patterns (and its defaults, e.g. ``.git``).
    """
    from huggingface_hub import CommitOperationAdd
    from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

    files = {p.relative_to(folder).as_posix(): p for p in sorted(folder.glob("**/*")) if p.is_file()}
    operations = []
    for name in filter_repo_objects(list(files), ignore_patterns=[*ignore, *DEFAULT_IGNORE_PATTERNS]):
        path = files[name]
        content: Path | bytes = path
        if path.suffix.lower() in TEXT_SUFFIXES and path.name not in TOKENIZER_FILES \
                and path.stat().st_size <= MAX_SCRUBBED:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
            scrubbed = scrub_paths(text, folder)
            if scrubbed != text:
                content = scrubbed.encode("utf-8", errors="surrogateescape")
        operations.append(CommitOperationAdd(path_in_repo=name, path_or_fileobj=content))
    return operations


def not_regular_files(folder: Path) -> list[str]:
    """What a push must not upload: symbolic links (to files or folders, inside or outside the run) and other
    entries that are not regular files or folders, as paths relative to ``folder``.

    A linked folder is listed once and not entered, so nothing it points to is read.
    """
    found = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in [*dirs, *files]:
            path = Path(root) / name
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                found.append(path.relative_to(folder).as_posix())
        dirs[:] = [d for d in dirs if not (Path(root) / d).is_symlink()]
    return sorted(found)


def download_run(repo_id: str, revision: str | None = None, token: str | None = None) -> Path:
    """Download a pushed run (without its checkpoints) and return the local folder.

    Raises:
        HfTlError: offline, or when the repo cannot be read.
    """
    from huggingface_hub import snapshot_download

    if _offline():
        raise HfTlError(f"'{repo_id}' is not a local folder, and the Hub is switched off (HF_HUB_OFFLINE=1) so it "
                        f"cannot be loaded as a Hub repo; check the path, or unset HF_HUB_OFFLINE.")
    try:
        return Path(snapshot_download(repo_id, revision=revision, token=token, endpoint=_endpoint(),
                                      ignore_patterns=IGNORE))
    except Exception as err:
        raise HfTlError(f"'{repo_id}' is not a local folder, and loading it as a Hub repo failed "
                        f"({type(err).__name__}: {_clean(str(err), token)}); check the path, or the repo name and "
                        f"your access.") from None


def _meant_local(text: str) -> bool:
    """A name that points at the local disk: ``./x``, ``/x``, ``~/x``, ``runs/x``, or ``FOLDER/x`` where FOLDER
    exists here."""
    first = text.split("/", 1)[0]
    return text.startswith((".", "/", "~")) or first == "runs" or (text.count("/") >= 1 and Path(first).is_dir())


def looks_like_repo_id(path: str | Path) -> bool:
    """``user/name`` that is not a local folder and does not look like a path."""
    text = str(path)
    return not Path(text).expanduser().exists() and text.count("/") == 1 and not _meant_local(text)


def local_run_path(path: str | Path) -> tuple[Path, bool]:
    """The local folder of a run: ``path`` itself, or its download when it names a Hub repo.

    Returns:
        ``(folder, whether it came from the Hub)``.

    Raises:
        HfTlError: for a path-like name that does not exist, or a repo that cannot be read.
    """
    missing_local_run(path)  # a path-like name that does not exist is never looked up on the Hub
    if looks_like_repo_id(path):
        return download_run(str(path)), True
    return Path(path).expanduser(), False


def missing_local_run(path: str | Path) -> None:
    """Refuse a run path that looks local and does not exist, instead of trying a Hub repo of that name.

    Raises:
        HfTlError: naming the folder that is not there.
    """
    text = str(path)
    if not Path(text).expanduser().exists() and _meant_local(text):
        raise HfTlError(f"No run folder '{text}' (looked in {Path.cwd()}); check the path. It names a local folder, "
                        f"so no Hub repo of that name is tried.")
