"""Hypothesis strategies shared by the reference's property tests.

``test_reference.py``, ``test_reference_advanced.py`` and ``test_backward.py`` draw their shapes
here: seeds for NumPy generators, up to two leading batch dimensions, sizes that are all
different (so a wrong transpose cannot pass by accident), and batch shapes that broadcast.
"""

from __future__ import annotations

from hypothesis import strategies as st

SEEDS = st.integers(0, 2**32 - 1)
BATCH_SHAPES = st.lists(st.integers(1, 3), max_size=2).map(tuple)  # 0 to 2 leading dims


def distinct_sizes(count: int, max_size: int = 6, avoid: tuple[int, ...] = ()):
    """``count`` different positive sizes (e.g. n_q, n_k, d_k, d_v), none of them in ``avoid``."""
    sizes = st.integers(1, max_size).filter(lambda size: size not in avoid)
    return st.lists(sizes, min_size=count, max_size=count, unique=True)


@st.composite
def broadcast_to(draw, batch: tuple[int, ...]) -> tuple[int, ...]:
    """A batch shape that broadcasts to ``batch``: leading dims may be dropped, others set to 1."""
    start = draw(st.integers(0, len(batch)))
    return tuple(draw(st.sampled_from((size, 1))) for size in batch[start:])
