"""The NLP side: the NumPy BERT encoder, tokenizer, weights reader, corpus, accuracy
measures and whole-model quantized files. Never imports golden.hwmodel."""
