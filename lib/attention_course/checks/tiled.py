"""Notebook 08: ``online_softmax(x, block_size)`` and ``tiled_attention(Q, K, V, block_size,
mask=None)``, attention that never holds the whole ``n_q × n_k`` score matrix.

Both must give all -inf (fully masked) rows zeros without NumPy warnings
(:data:`~.framework.NO_WARNINGS`); ``tiled_attention``'s case ``"memory"`` also runs the
learner's function under :mod:`tracemalloc` (which NumPy reports its allocations to) and fails
if its peak allocation exceeds :data:`MEMORY_FRACTION` of one ``n_q × n_k`` float64 matrix.

Shape legend: ``...`` leading batch dimensions, ``n`` length of the softmax axis, ``n_q``
queries, ``n_k`` keys (and values), ``d_k`` query/key width, ``d_v`` value width, ``b`` keys
per block.
"""

from __future__ import annotations

import numpy as np

from .. import reference as ref
from .framework import (
    INPUTS_UNCHANGED,
    NO_WARNINGS,
    Case,
    Exercise,
    Mistake,
    Requirement,
    Trial,
    make_check,
)
from .inputs import lengths_mask, non_divisor, normal, qkv, scaled_scores, sizes, two_sided_mask
from .mistakes import finite_or_zero, safe_softmax
from .runner import peak_bytes


def _online_inputs(kind: str):
    def make(rng):
        b1, b2 = sizes(rng, 2, 2, 6)
        (n,) = sizes(rng, 1, 7, 14, exclude=(b1, b2))  # several blocks per row
        (n_q,) = sizes(rng, 1, 4, 14, exclude=(b1, b2, n))
        block = non_divisor(rng, n, exclude=(n_q, b1, b2))
        if kind == "random":
            x = normal(rng, (n_q, n), 3.0)
            return [((x, 1), {}), ((x, block), {}), ((x, n + int(rng.integers(1, 5))), {})]
        if kind == "large":
            # Rows centred thousands apart; half rise (the maximum grows block after block),
            # half fall (the first block holds the maximum, the last lies far below it).
            offsets = rng.uniform(-5000.0, 5000.0, size=(n_q, 1))
            slopes = rng.permutation(np.resize([300.0, -300.0], n_q))[:, None]
            x = offsets + slopes * np.arange(n) + normal(rng, (n_q, n), 40.0)
            return [((x, block), {})]
        if kind == "neg_inf":
            x = normal(rng, (n_q, n), 3.0)
            x[0] = -np.inf  # a row with no finite entry
            x[1, : block + 1] = -np.inf  # its first block is all -inf (left padding)
            x[2, n - block + 1 :] = -np.inf  # trailing -inf
            x[3:][rng.random((n_q - 3, n)) < 0.3] = -np.inf  # scattered -inf
            x = rng.permutation(x)
            return [((x, block), {}), ((x, 1), {})]
        if kind == "batch":
            return [((normal(rng, (b1, b2, n_q, n), 3.0), block), {})]
        if kind == "float32":
            return [((normal(rng, (n_q, n), 30.0, np.float32), block), {})]
        if kind == "inputs_unchanged":
            return [((normal(rng, (b1, n_q, n), 3.0), block), {})]
        raise KeyError(kind)

    return make


def _online_with(rescale="right", max_of="running", guard=True, init="neg_inf", per_block=False):
    """An online softmax with one deliberate change (the reference's algorithm otherwise)."""

    def online(x, block_size):
        x = np.asarray(x)
        n, dtype = x.shape[-1], x.dtype
        if per_block:
            return np.concatenate(
                [safe_softmax(x[..., s : s + block_size]) for s in range(0, n, block_size)],
                axis=-1,
            )
        starts = list(range(0, n, block_size))
        m = np.full((*x.shape[:-1], 1), -np.inf, dtype=dtype)  # (..., 1)
        denom = np.zeros((*x.shape[:-1], 1), dtype=dtype)  # (..., 1)
        if init == "first_block":
            first = x[..., :block_size]
            m = first.max(axis=-1, keepdims=True)
            denom = np.exp(first - m).sum(axis=-1, keepdims=True)
            starts = starts[1:]
        for s in starts:
            block = x[..., s : s + block_size]  # (..., b)
            if max_of == "whole_block":  # one maximum for the whole block, all rows together
                block_max = np.full_like(m, block.max())
            else:
                block_max = block.max(axis=-1, keepdims=True)  # (..., 1)
            m_new = block_max if max_of == "block" else np.maximum(m, block_max)
            shift = finite_or_zero(m_new) if guard else m_new
            if rescale == "right":
                denom = denom * np.exp(m - shift)
            elif rescale == "wrong_sign":
                denom = denom * np.exp(shift - m)
            denom = denom + np.exp(block - shift).sum(axis=-1, keepdims=True)
            m = m_new
        shift = finite_or_zero(m) if guard else m
        e = np.exp(x - shift)  # (..., n)
        if not guard:
            return e / denom
        return np.divide(e, denom, out=np.zeros_like(e), where=denom > 0)

    return online


_ONLINE = Exercise(
    name="online_softmax",
    arg_names=("x", "block_size"),
    reference=ref.online_softmax,
    n_outputs=1,
    output_names=("softmax",),
    signature="online_softmax(x, block_size)",
    arg_layouts=("(..., n)", ""),
    output_layouts=("(..., n)",),
    cases={
        "random": Case(
            "matches softmax for block sizes 1, a non-divisor of n, and > n",
            _online_inputs("random"),
        ),
        "large": Case(
            "is stable for scores in the thousands whose maximum moves",
            _online_inputs("large"),
        ),
        "neg_inf": Case(
            "gives zeros for all -inf rows, no NaN, no warnings",
            _online_inputs("neg_inf"),
            requires=(NO_WARNINGS,),
        ),
        "batch": Case("works with leading batch dimensions", _online_inputs("batch")),
        "float32": Case("works in float32", _online_inputs("float32")),
        "inputs_unchanged": Case(
            "does not modify its input",
            _online_inputs("inputs_unchanged"),
            requires=(INPUTS_UNCHANGED,),
        ),
    },
    mistakes=(
        Mistake(
            "each block normalised on its own: every block's weights sum to 1",
            "keep one running maximum m and one running sum for the whole row across the "
            "blocks, and divide by the final sum only at the end",
            _online_with(per_block=True),
        ),
        Mistake(
            "the running sum was not rescaled when the maximum changed: terms computed against "
            "the old maximum were added to terms computed against the new one",
            "before adding a block, multiply the running sum by np.exp(m_old - m_new): "
            "denom = denom * np.exp(m_old - m_new) + np.exp(block - m_new).sum(-1, keepdims=True)",
            _online_with(rescale="none"),
        ),
        Mistake(
            "rescaled with exp(m_new - m_old) (wrong sign): the old sum grows instead of shrinking",
            "the factor is np.exp(m_old - m_new) <= 1: the old terms exp(x - m_old) become "
            "exp(x - m_new) when multiplied by exp(m_old - m_new)",
            _online_with(rescale="wrong_sign", init="first_block"),
        ),
        Mistake(
            "rescaled with exp(m_new - m_old) (wrong sign): with the running maximum starting "
            "at -inf, exp(+inf) = inf times the sum 0 gives NaN",
            "the factor is np.exp(m_old - m_new) <= 1 (it is exp(-inf) = 0 for the first "
            "block, which correctly drops the empty sum)",
            _online_with(rescale="wrong_sign", guard=False),
        ),
        Mistake(
            "rescaled with exp(m_new - m_old) (wrong sign): with the running maximum starting "
            "at -inf, exp(+inf) = inf times the sum 0 gives a NaN sum, so no sum is positive "
            "and every weight came out 0",
            "the factor is np.exp(m_old - m_new) <= 1 (it is exp(-inf) = 0 for the first "
            "block, which correctly drops the empty sum)",
            _online_with(rescale="wrong_sign"),
        ),
        Mistake(
            "the running maximum was replaced by each block's own maximum: a block whose "
            "scores lie far below an earlier one makes np.exp overflow",
            "keep the running maximum: m_new = np.maximum(m_old, block.max(axis=-1, "
            "keepdims=True))",
            _online_with(max_of="block"),
        ),
        Mistake(
            "one maximum for the whole block (all rows together) instead of each row's own: "
            "rows far below it underflow to 0",
            "take the maximum along the last axis only: block.max(axis=-1, keepdims=True)",
            _online_with(max_of="whole_block"),
        ),
        Mistake(
            "NaN on rows that are all -inf (or start with an all -inf block): the running "
            "maximum is -inf there and -inf - (-inf) = NaN",
            "shift by 0 where the running maximum is -inf (np.where(np.isfinite(m), m, 0)), "
            "and divide only where the sum is positive (np.divide(e, denom, "
            "out=np.zeros_like(e), where=denom > 0))",
            _online_with(guard=False),
        ),
    ),
    forbidden=frozenset(
        {
            "online_softmax",
            "softmax",
            "scaled_dot_product_attention",
            "tiled_attention",
            "multi_head_attention",
            "self_attention",
            "cross_attention",
        }
    ),
    exp_magnitude=lambda x, *args, **kwargs: float(
        np.max(np.abs(np.where(np.isfinite(x), x, 0.0)), initial=0.0)
    ),
)


#: Sizes of the "memory" case: n_q x n_k float64 scores are ~2-3 MB, a block of them ~40 kB.
_MEMORY_SIZES = {"n_q": (100, 140), "n_k": (2400, 3000), "d_k": (8, 16), "d_v": (16, 24),
                 "block_size": (24, 48)}  # fmt: skip
#: Peak allocation allowed in the "memory" case, as a fraction of one n_q x n_k matrix.
MEMORY_FRACTION = 0.25


def _holds_the_whole_matrix(trial: Trial) -> str | None:
    Q, K = trial.args[:2]
    n_q, n_k = Q.shape[-2], K.shape[-2]
    full = n_q * n_k * np.dtype(np.float64).itemsize
    try:
        peak = peak_bytes(trial.fn, trial.args, trial.kwargs)
    except Exception:  # noqa: BLE001 - it ran fine a moment ago in the value check
        return None
    if peak <= MEMORY_FRACTION * full:
        return None
    return (
        f"Your tiled_attention allocated {peak / 1e6:.1f} MB at its peak, "
        f"{peak / full:.0%} of the full score matrix (n_q × n_k = {n_q} × {n_k} "
        f"float64 numbers, {full / 1e6:.1f} MB): about the size of the full score "
        "matrix, so it holds (most of) it at once. Compute one block at a time: the "
        f"scores of all queries against block_size = {trial.args[3]} keys, "
        "(..., n_q, block_size), then the next block, keeping only the running "
        "maximum, the running sum and the accumulator between blocks. "
        f"(Allowed: {MEMORY_FRACTION:.0%} of the full matrix.)"
    )


#: The peak allocation stays below MEMORY_FRACTION of one n_q x n_k float64 matrix.
TILES_ONLY = Requirement(_holds_the_whole_matrix)


def _tiled_inputs(kind: str):
    def make(rng):
        b1, b2 = sizes(rng, 2, 2, 6)
        (n_k,) = sizes(rng, 1, 7, 14, exclude=(b1, b2))  # several blocks of keys
        n_q, d_k, d_v = sizes(rng, 3, 2, 14, exclude=(b1, b2, n_k))
        block = non_divisor(rng, n_k, exclude=(n_q, d_k, d_v, b1, b2))
        if kind == "random":
            Q, K, V = qkv(rng, (), n_q, n_k, d_k, d_v)
            return [((Q, K, V, b), {}) for b in (1, block, n_k + int(rng.integers(1, 5)))]
        if kind == "mask":
            mask = two_sided_mask(rng, (n_q, n_k))
            mask[rng.choice(n_q, size=min(2, n_q - 1), replace=False)] = False
            lengths = rng.integers(1, n_k + 1, size=b1)
            lengths[rng.integers(b1)] = 0  # one sequence is all padding
            return [
                ((*qkv(rng, (), n_q, n_k, d_k, d_v), block, mask), {}),
                ((*qkv(rng, (b1,), n_q, n_k, d_k, d_v), block, lengths_mask(lengths, n_k)), {}),
            ]
        if kind == "batch":
            return [((*qkv(rng, (b1, b2), n_q, n_k, d_k, d_v), block), {})]
        if kind == "large":
            for _ in range(100):
                Q, K, V = qkv(rng, (), n_q, n_k, d_k, d_v, 40.0)
                if np.abs(scaled_scores(Q, K)).max() > 800:
                    break
            return [((Q, K, V, block), {})]
        if kind == "float32":
            return [((*qkv(rng, (b1,), n_q, n_k, d_k, d_v, 4.0, np.float32), block), {})]
        if kind == "inputs_unchanged":
            lengths = rng.integers(1, n_k, size=b1)
            arrays = qkv(rng, (b1,), n_q, n_k, d_k, d_v)
            return [((*arrays, block, lengths_mask(lengths, n_k)), {})]
        if kind == "memory":
            n_q, n_k, d_k, d_v, block = (int(rng.integers(*r)) for r in _MEMORY_SIZES.values())
            return [((*qkv(rng, (), n_q, n_k, d_k, d_v), block), {})]
        raise KeyError(kind)

    return make


def _tiled_with(
    rescale_acc=True,
    rescale_denom=True,
    wrong_sign=False,
    guard=True,
    subtract_max=True,
    scale=True,
    per_block=False,
    divide_inside=False,
    init="neg_inf",
    full_matrix=False,
):
    """Tiled attention (over key blocks) with one deliberate change."""

    def tiled(Q, K, V, block_size, mask=None):
        n_q, d_k = Q.shape[-2:]
        n_k, dtype = K.shape[-2], np.result_type(Q, K, V)
        if scale:
            Q = Q / d_k**0.5  # a Python float keeps float32 input in float32
        batch = np.broadcast_shapes(Q.shape[:-2], K.shape[:-2], V.shape[:-2])
        if mask is not None:
            batch = np.broadcast_shapes(batch, np.shape(mask)[:-2])
            mask = np.broadcast_to(mask, (*batch, n_q, n_k))
        if full_matrix:
            S = Q @ np.swapaxes(K, -1, -2)
            if mask is not None:
                S = np.where(mask, S, -np.inf)
            return safe_softmax(S) @ V
        m = np.full((*batch, n_q, 1), -np.inf, dtype=dtype)
        denom = np.zeros((*batch, n_q, 1), dtype=dtype)
        acc = np.zeros((*batch, n_q, V.shape[-1]), dtype=dtype)
        for k0 in range(0, n_k, block_size):
            S = Q @ np.swapaxes(K[..., k0 : k0 + block_size, :], -1, -2)  # (..., n_q, b)
            if mask is not None:
                S = np.where(mask[..., k0 : k0 + block_size], S, -np.inf)
            V_blk = V[..., k0 : k0 + block_size, :]  # (..., b, d_v)
            if per_block:
                acc = acc + safe_softmax(S) @ V_blk
                continue
            if init == "first_block" and k0 == 0:
                m = S.max(axis=-1, keepdims=True)
            m_new = np.maximum(m, S.max(axis=-1, keepdims=True))
            if not subtract_max:
                m_new = np.zeros_like(m_new)
            shift = finite_or_zero(m_new) if guard else m_new
            alpha = np.exp(shift - m) if wrong_sign else np.exp(m - shift)
            P = np.exp(S - shift)  # (..., n_q, b)
            new_denom = denom * (alpha if rescale_denom else 1.0) + P.sum(axis=-1, keepdims=True)
            if divide_inside:  # keeps acc normalised but forgets to undo the old division
                acc = (acc * alpha + P @ V_blk) / np.where(new_denom > 0, new_denom, 1.0)
            else:
                acc = acc * (alpha if rescale_acc else 1.0) + P @ V_blk
            denom, m = new_denom, m_new
        if per_block or divide_inside:
            return acc
        if not guard:
            return acc / denom
        return np.divide(acc, denom, out=np.zeros_like(acc), where=denom > 0)

    return tiled


_TILED = Exercise(
    name="tiled_attention",
    arg_names=("Q", "K", "V", "block_size", "mask"),
    reference=lambda Q, K, V, block_size, mask=None: ref.tiled_attention(
        Q, K, V, block_size, mask=mask
    ),
    n_outputs=1,
    output_names=("output",),
    signature="tiled_attention(Q, K, V, block_size, mask=None)",
    arg_layouts=("(..., n_q, d_k)", "(..., n_k, d_k)", "(..., n_k, d_v)", "", "(..., n_q, n_k)"),
    output_layouts=("(..., n_q, d_v)",),
    cases={
        "random": Case(
            "matches attention for block sizes 1, a non-divisor of n_k, > n_k",
            _tiled_inputs("random"),
        ),
        "mask": Case(
            "applies a mask; fully masked rows give zeros, no warnings",
            _tiled_inputs("mask"),
            requires=(NO_WARNINGS,),
        ),
        "batch": Case("works with leading batch dimensions", _tiled_inputs("batch")),
        "large": Case("is stable for large scores", _tiled_inputs("large")),
        "float32": Case("works in float32", _tiled_inputs("float32")),
        "memory": Case(
            "never holds the whole n_q × n_k score matrix (peak measured)",
            _tiled_inputs("memory"),
            requires=(TILES_ONLY,),
        ),
        "inputs_unchanged": Case(
            "does not modify its inputs",
            _tiled_inputs("inputs_unchanged"),
            requires=(INPUTS_UNCHANGED,),
        ),
    },
    mistakes=(
        Mistake(
            "each block normalised on its own (a softmax per block) and the blocks' outputs "
            "added: every block gets a total weight of 1",
            "keep a running maximum m, a running sum denom and an un-normalised accumulator acc "
            "across the blocks, and divide acc by denom once, after the last block",
            _tiled_with(per_block=True),
        ),
        Mistake(
            "the accumulator was not rescaled when the maximum changed (the running sum was)",
            "multiply both the running sum and the accumulator by alpha = np.exp(m_old - m_new) "
            "before adding the block: acc = acc * alpha + P @ V_block",
            _tiled_with(rescale_acc=False),
        ),
        Mistake(
            "neither the running sum nor the accumulator was rescaled when the maximum changed",
            "multiply both by alpha = np.exp(m_old - m_new) before adding the block's terms",
            _tiled_with(rescale_acc=False, rescale_denom=False),
        ),
        Mistake(
            "the accumulator was divided by the running sum inside the loop without undoing "
            "the previous division: the old output must be multiplied back by the old sum",
            "keep acc un-normalised (acc = acc * alpha + P @ V_block) and divide by denom once, "
            "after the loop",
            _tiled_with(divide_inside=True),
        ),
        Mistake(
            "rescaled with exp(m_new - m_old) (wrong sign): the old terms grow instead of "
            "shrinking",
            "alpha = np.exp(m_old - m_new) <= 1 turns exp(s - m_old) into exp(s - m_new)",
            _tiled_with(wrong_sign=True, init="first_block"),
        ),
        Mistake(
            "rescaled with exp(m_new - m_old) (wrong sign): with the running maximum starting "
            "at -inf, exp(+inf) = inf times the empty sum 0 gives NaN",
            "alpha = np.exp(m_old - m_new) <= 1; on the first block it is exp(-inf) = 0",
            _tiled_with(wrong_sign=True, guard=False),
        ),
        Mistake(
            "rescaled with exp(m_new - m_old) (wrong sign): with the running maximum starting "
            "at -inf, exp(+inf) = inf times the empty sum 0 gives a NaN sum, so no sum is "
            "positive and every output row came out 0",
            "alpha = np.exp(m_old - m_new) <= 1; on the first block it is exp(-inf) = 0",
            _tiled_with(wrong_sign=True),
        ),
        Mistake(
            "NaN on fully masked rows: their running maximum stays -inf and -inf - (-inf) = NaN",
            "shift by 0 where the running maximum is -inf (np.where(np.isfinite(m), m, 0)), and "
            "divide only where the sum is positive (np.divide(acc, denom, "
            "out=np.zeros_like(acc), where=denom > 0))",
            _tiled_with(guard=False),
        ),
        Mistake(
            "no maximum subtracted: np.exp of large scores overflowed to inf and gave NaN",
            "keep a running maximum m of each query's scores and exponentiate S - m_new",
            _tiled_with(subtract_max=False),
        ),
        Mistake(
            "no scaling: the scores were not divided by √d_k",
            "divide the scores (or the queries, once) by math.sqrt(d_k), d_k = Q.shape[-1] (a "
            "Python float: it keeps float32 input in float32)",
            _tiled_with(scale=False),
        ),
    ),
    forbidden=frozenset(
        {
            "tiled_attention",
            "scaled_dot_product_attention",
            "softmax",
            "online_softmax",
            "multi_head_attention",
            "self_attention",
            "cross_attention",
        }
    ),
)


check_online_softmax = make_check(_ONLINE)
check_tiled_attention = make_check(_TILED)
