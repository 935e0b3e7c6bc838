"""Bit-exact integer models of the hardware blocks in hw/ (one file per block), their
packed formats and cycle models. Never imports golden.nlp."""
