"""Where the NLP side meets the hardware models: the project's BERT on real text feeding the
bit-exact accelerator model. The only part of ``golden`` that imports both ``golden.nlp`` and
``golden.hwmodel`` (docs/architecture.md)."""
