"""Real English sentences for the accuracy proxies: the license texts that every Debian machine has
under ``/usr/share/common-licenses`` (base-files), split into sentences.

The sentences were not written for the tests: that is the point. If the texts are missing the
loader raises :class:`CorpusError` saying where it looked, rather than falling back to anything.
"""

import pathlib
import re

import numpy as np

__all__ = ["CorpusError", "LICENSE_DIR", "DEFAULT_SOURCES", "split_sentences", "load_sentences"]

LICENSE_DIR = pathlib.Path("/usr/share/common-licenses")
#: Prose-heavy licenses, in a fixed order so that the corpus is the same on every machine.
DEFAULT_SOURCES = ("GPL-3", "Apache-2.0", "LGPL-2.1", "MPL-2.0", "GFDL-1.3", "Artistic",
                   "GPL-2", "CC0-1.0")

# A sentence ends at . ! ? (optionally closed by a quote or bracket) followed by whitespace and
# a capital, digit, quote or bracket. Abbreviations like "e.g." and "i.e." are followed by a
# lower-case word and so do not split.
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_MIN_WORDS = 4
_MAX_CHARS = 600


class CorpusError(Exception):
    """The text source is missing or holds too few sentences."""


def split_sentences(text):
    """Split running text into sentences: paragraphs (blank-line separated) are joined into one
    line, then cut at sentence ends. Fragments of fewer than four words, mostly non-letters (rules,
    addresses, section numbers) or longer than 600 characters are dropped."""
    sentences = []
    for paragraph in re.split(r"\n\s*\n", text):
        flat = " ".join(paragraph.split())
        for piece in _BOUNDARY.split(flat):
            piece = piece.strip()
            if len(piece.split()) < _MIN_WORDS or len(piece) > _MAX_CHARS:
                continue
            letters = sum(ch.isalpha() for ch in piece)
            if letters < 0.6 * len(piece):
                continue
            sentences.append(piece)
    return sentences


def _read(path):
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise CorpusError(f"{path}: cannot read it ({e.strerror})") from None


def load_sentences(count=None, *, source=None):
    """Distinct real sentences, deterministic.

    Parameters
    ----------
    count : int or None
        How many; ``None`` for all. A subset is spread evenly over the whole corpus (not just its
        first file).
    source : path or None
        A text file or a folder of text files; default the :data:`DEFAULT_SOURCES` in
        :data:`LICENSE_DIR`.

    Raises
    ------
    CorpusError
        If the source is missing or yields fewer than ``count`` sentences.
    """
    if source is None:
        if not LICENSE_DIR.is_dir():
            raise CorpusError(f"{LICENSE_DIR} does not exist; it comes with Debian's base-files "
                              f"package (or pass a text file or folder as the corpus)")
        files = [LICENSE_DIR / name for name in DEFAULT_SOURCES if (LICENSE_DIR / name).is_file()]
        if not files:
            raise CorpusError(f"{LICENSE_DIR} holds none of {', '.join(DEFAULT_SOURCES)}")
    else:
        source = pathlib.Path(source)
        if source.is_dir():
            files = sorted(p for p in source.iterdir() if p.is_file())
        elif source.is_file():
            files = [source]
        else:
            raise CorpusError(f"{source}: no such corpus file or folder")
    seen, sentences = set(), []
    for path in files:
        for sentence in split_sentences(_read(path)):
            if sentence not in seen:
                seen.add(sentence)
                sentences.append(sentence)
    where = source if source is not None else LICENSE_DIR
    if not sentences:
        raise CorpusError(f"{where}: no sentences found")
    if count is None:
        return sentences
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive integer, not {count!r}")
    if count > len(sentences):
        raise CorpusError(f"{where}: only {len(sentences)} sentences, {count} requested")
    picks = np.linspace(0, len(sentences) - 1, count).round().astype(int)
    return [sentences[i] for i in picks]
