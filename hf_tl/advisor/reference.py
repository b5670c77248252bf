"""The generic reference corpus that the task's text is measured against: plain text, one paragraph a line
(WikiText-2 by default), cut into sentences so that its texts are as long as a task's."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

from hf_tl.data.loading import DATA_DIR_ENV
from hf_tl.errors import HfTlError

DEFAULT_REFERENCE = "wikitext-2/wiki.valid.tokens"  # under $HF_TL_DATA_DIR
REFERENCE_ENV = "HF_TL_REFERENCE_CORPUS"
MIN_WORDS, MAX_WORDS = 5, 60
# WikiText's tokenisation marks: "3 @,@ 000", "well @-@ known"; "<unk>" stands for a rare word it removed.
_MARKS = {" @-@ ": "-", " @,@ ": ",", " @.@ ": "."}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")


def reference_path(given: str | None) -> Path:
    """The reference corpus file: ``given``, else ``$HF_TL_REFERENCE_CORPUS``, else WikiText-2's validation text
    under ``$HF_TL_DATA_DIR``.

    Raises:
        HfTlError: when none of them is a file.
    """
    name = given or os.environ.get(REFERENCE_ENV) or DEFAULT_REFERENCE
    path = Path(os.path.expanduser(name))
    base = os.environ.get(DATA_DIR_ENV)
    if not path.is_file() and base and not path.is_absolute():
        path = Path(os.path.expanduser(base)) / name
    if not path.is_file():
        raise HfTlError(f"No reference corpus at '{name}'" + (f" (also looked under {base})" if base else "")
                        + f"; give --reference_file (plain text, one paragraph a line, e.g. WikiText-2's "
                          f"wiki.valid.tokens) or set {REFERENCE_ENV}.")
    return path


def reference_sentences(path: Path, limit: int, seed: int) -> list[str]:
    """Up to ``limit`` sentences of ``MIN_WORDS``-``MAX_WORDS`` words from the file, drawn by ``seed``.

    Headings (``= Title =``), empty lines and sentences holding WikiText's ``<unk>`` are left out; its
    tokenisation marks are undone.

    Raises:
        HfTlError: when the file holds no such sentence.
    """
    sentences = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line or (line.startswith("=") and line.endswith("=")):
            continue
        for mark, plain in _MARKS.items():
            line = line.replace(mark, plain)
        for sentence in _SENTENCE_END.split(line):
            words = sentence.split()
            if MIN_WORDS <= len(words) <= MAX_WORDS and "<unk>" not in sentence:
                sentences.append(" ".join(words))
    if not sentences:
        raise HfTlError(f"The reference corpus '{path}' holds no sentence of {MIN_WORDS}-{MAX_WORDS} words; give "
                        f"plain text, one paragraph a line.")
    random.Random(seed).shuffle(sentences)
    return sentences[:limit]
