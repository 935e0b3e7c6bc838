"""The GOBO tile on an FPGA board: a UART host link, its command decoder and the board tops
(docs/board.md)."""
