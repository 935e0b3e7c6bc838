"""A thin wrapper over the Hugging Face ``tokenizers`` package (Rust WordPiece, pinned in
pyproject.toml): BERT tokenization is not written by hand here.

:class:`Tokenizer` turns sentences into padded ``input_ids`` / ``attention_mask`` /
``token_type_ids`` arrays for :class:`golden.nlp.bert.BertEncoder`. It reads a ``tokenizer.json``
(the model's own, with its normalizer and special tokens) or, failing that, a ``vocab.txt`` (built
as an uncased BERT WordPiece tokenizer).
"""

import pathlib

import numpy as np

__all__ = ["Tokenizer", "TokenizerError", "DEFAULT_MAX_LENGTH"]

#: sentence-transformers truncates all-MiniLM-L6-v2 input at 256 tokens (sentence_bert_config.json).
DEFAULT_MAX_LENGTH = 256


class TokenizerError(ValueError):
    """A tokenizer file is missing or unreadable."""


class Tokenizer:
    """Tokenize sentences for a BERT encoder.

    Parameters
    ----------
    path : str or pathlib.Path
        A ``tokenizer.json``, a ``vocab.txt``, or a folder holding either (``tokenizer.json``
        preferred).
    max_length : int
        Sentences are truncated to this many tokens, ``[CLS]`` and ``[SEP]`` included.
    lowercase : bool
        Only for ``vocab.txt``: lower-case and strip accents (uncased BERT).
    """

    def __init__(self, path, *, max_length=DEFAULT_MAX_LENGTH, lowercase=True):
        import tokenizers  # imported here so that `golden` stays importable without it

        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
            raise ValueError(f"max_length must be an integer of at least 2, not {max_length!r}")
        path = pathlib.Path(path)
        if path.is_dir():
            for name in ("tokenizer.json", "vocab.txt"):
                if (path / name).exists():
                    path = path / name
                    break
            else:
                raise TokenizerError(f"{path}: holds neither tokenizer.json nor vocab.txt")
        if not path.exists():
            raise TokenizerError(f"{path}: no such tokenizer file")
        try:
            if path.suffix == ".json":
                tok = tokenizers.Tokenizer.from_file(str(path))
            else:
                tok = tokenizers.BertWordPieceTokenizer(str(path), lowercase=lowercase)
        except Exception as e:  # the Rust library raises plain Exception subclasses
            raise TokenizerError(f"{path}: cannot read it as a tokenizer ({e})") from None
        tok.no_padding()  # padding is ours (to the longest in a batch); the file may fix it at 128
        tok.enable_truncation(max_length)
        self._tok = tok
        self._path = path
        self._max_length = max_length
        self._pad_id = tok.token_to_id("[PAD]") or 0
        model = getattr(tok, "model", None) or getattr(getattr(tok, "_tokenizer", None), "model",
                                                       None)
        self._unk_id = tok.token_to_id(getattr(model, "unk_token", None) or "[UNK]")

    @property
    def path(self):
        return self._path

    @property
    def max_length(self):
        return self._max_length

    def encode(self, sentences):
        """Return ``(input_ids, attention_mask, token_type_ids)``, each ``int64 [batch, tokens]``,
        padded with ``[PAD]`` to the longest sentence."""
        if isinstance(sentences, str):
            raise TypeError("encode takes a list of sentences, not one string")
        sentences = list(sentences)
        if not sentences:
            raise ValueError("encode needs at least one sentence")
        encodings = self._tok.encode_batch(sentences)
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n] = e.ids
            mask[row, :n] = 1
            types[row, :n] = e.type_ids
        return ids, mask, types

    def unknown_share(self, sentences):
        """``{"tokens", "unknown", "unknown_fraction"}`` over the sentences' tokens (after
        truncation, ``[CLS]`` / ``[SEP]`` not counted): how many the vocabulary could not
        represent. A high share means the vocabulary does not fit the text, and an accuracy
        measured on it says little."""
        tokens = unknown = 0
        for e in self._tok.encode_batch(list(sentences)):
            for token, special in zip(e.ids, e.special_tokens_mask):
                if not special:
                    tokens += 1
                    unknown += token == self._unk_id
        return {"tokens": tokens, "unknown": unknown,
                "unknown_fraction": unknown / tokens if tokens else 0.0}

    def lengths(self, sentences):
        """Token count of each sentence (after truncation)."""
        return [len(e.ids) for e in self._tok.encode_batch(list(sentences))]
