"""Arithmetic building blocks shared by the hardware components."""

__all__ = ["adder_tree"]


def adder_tree(terms):
    """The sum of ``terms`` (a non-empty list of Amaranth values) as a balanced adder tree.

    Balanced, so the depth is ``ceil(log2(len(terms)))`` adders; Amaranth widens every sum by one
    bit, so no partial sum can overflow.
    """
    while len(terms) > 1:
        pairs = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        terms = pairs + ([terms[-1]] if len(terms) % 2 else [])
    return terms[0]
