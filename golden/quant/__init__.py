"""The GOBO quantizer, its stored forms, and the scale-based quantizers it is compared with."""
