"""Accuracy proxies and the real-text corpus."""

import numpy as np
import pytest

from golden.nlp.accuracy import cosine_rows, nearest_neighbours, proxies
from golden.nlp.corpus import LICENSE_DIR, CorpusError, load_sentences, split_sentences


def test_proxies_of_identical_and_perturbed_embeddings():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(50, 16))
    assert proxies(ref, 3 * ref) == {"sentences": 50, "mean_cos": pytest.approx(1.0),
                                     "worst_cos": pytest.approx(1.0), "nn_agreement": 1.0}
    flipped = ref.copy()
    flipped[7] *= -1
    p = proxies(ref, flipped)
    assert p["worst_cos"] == pytest.approx(-1.0)
    assert p["mean_cos"] == pytest.approx((49 - 1) / 50)
    assert p["nn_agreement"] < 1.0


def test_nearest_neighbours_exclude_self():
    x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    assert nearest_neighbours(x).tolist() == [1, 0, 3, 2]
    np.testing.assert_allclose(cosine_rows(x, x), 1.0)


@pytest.mark.parametrize("a, b, message", [
    (np.ones((3, 2)), np.ones((3, 3)), "disagree in shape"),
    (np.ones(3), np.ones(3), "must be \\[sentences, dims\\]"),
    (np.zeros((3, 2)), np.ones((3, 2)), "finite and non-zero"),
    (np.ones((1, 2)), np.ones((1, 2)), "at least two sentences"),
])
def test_proxy_errors(a, b, message):
    with pytest.raises(ValueError, match=message):
        proxies(a, b)


def test_split_sentences_keeps_prose_and_drops_rules():
    text = ("  1. Definitions.\n\n  The licensor grants you a license, e.g. to copy the\n"
            "work.  You may not sublicense it! Is that clear? Yes.\n\n"
            "  ---------------------------------------------\n")
    assert split_sentences(text) == [
        "The licensor grants you a license, e.g. to copy the work.",
        "You may not sublicense it!"]


def test_license_corpus_is_real_and_deterministic():
    assert LICENSE_DIR.is_dir(), "Debian's base-files ships /usr/share/common-licenses"
    every = load_sentences()
    assert len(every) >= 300 and len(set(every)) == len(every)
    picked = load_sentences(300)
    assert picked == load_sentences(300) and set(picked) <= set(every)
    assert any("GNU" in s for s in picked) and any("Apache" in s or "Contributor" in s
                                                   for s in picked)


def test_corpus_errors(tmp_path):
    with pytest.raises(CorpusError, match="no such corpus file or folder"):
        load_sentences(source=tmp_path / "absent.txt")
    (tmp_path / "short.txt").write_text("Too few words. But this one has enough words.")
    assert load_sentences(source=tmp_path / "short.txt") == ["But this one has enough words."]
    with pytest.raises(CorpusError, match="only 1 sentences, 5 requested"):
        load_sentences(5, source=tmp_path)
    (tmp_path / "short.txt").write_text("---")
    with pytest.raises(CorpusError, match="no sentences found"):
        load_sentences(source=tmp_path)
    with pytest.raises(ValueError, match="count must be a positive integer"):
        load_sentences(0)
