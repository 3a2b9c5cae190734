"""Notebook 08: ``online_softmax(x, block_size)`` and ``tiled_attention(Q, K, V, block_size,
mask=None)``, attention that never holds the whole ``n_q × n_k`` score matrix.

Both must give all -inf (fully masked) rows zeros without NumPy warnings
(:data:`~.framework.NO_WARNINGS`). Right values are not enough: two cases grade the idea the
notebook teaches, reading the scores one block of keys at a time, so that a plain softmax or a
plain attention loses exactly the points about it.

- ``online_softmax``'s case ``"streaming"`` (:data:`STREAMED`) calls the learner's function
  once more on ``x`` wrapped in :class:`_Watched`, an ndarray subclass that records every
  maximum or sum (any ufunc reduction) taken along the last axis of ``x`` or of an array
  computed elementwise from it, and fails if one spans more than ``block_size`` columns: a
  softmax that takes ``np.max(x, axis=-1)`` or sums ``np.exp(x - m)`` over the whole row has not
  streamed, whatever its values. The second pass, which writes ``exp(x - m) / ℓ`` over the
  whole row, takes no maximum or sum and passes. We judge the learner's own ``online_softmax``
  rather than add a separate step function (``online_softmax_update(m, l, block)``): with a
  separate exercise, a plain softmax submitted as ``online_softmax`` would still get full marks
  on every ``online_softmax`` check. The watch only sees NumPy's ufuncs at work on ``x`` and on
  arrays computed from it: it never fails a streaming answer and it fails the usual
  non-streaming ones, but it can be escaped (``np.asarray(x)`` first gives a plain array, and a
  reduction written as a Python loop over entries is not seen).
- ``tiled_attention``'s case ``"memory"`` (:data:`TILES_ONLY`) runs the learner's function under
  :mod:`tracemalloc` (which NumPy reports its allocations to) with a tiny ``n_q`` (3 or 4) and a
  very large ``n_k`` (36 000 to 44 000), against a budget proportional to ``n_q · block_size``
  (:func:`memory_budget`): a few blocks of scores and a few ``(n_q, d)`` arrays. One query's row
  of ``n_k`` scores is more than twice the budget, so a loop over the queries that holds each
  query's whole ``(1, n_k)`` row fails, as do the full score matrix, one block of all keys
  (``block_size`` ignored), an ``(n_q, n_k)`` mask of ones made when ``mask`` is None, and a
  copy of all of ``K`` or ``V``. A loop over key blocks returns in about 0.02 s there, a
  pure-Python loop over every query, key and feature in 1.6 to 2.7 s (measured 2026-12, see
  :data:`~.runner.TIME_LIMIT_SECONDS`).

Shape legend: ``...`` leading batch dimensions, ``n`` length of the softmax axis, ``n_q``
queries, ``n_k`` keys (and values), ``d_k`` query/key width, ``d_v`` value width, ``b`` keys
per block.
"""

from __future__ import annotations

import numpy as np

from .. import reference as ref
from .framework import (
    NO_WARNINGS,
    Case,
    Exercise,
    Mistake,
    Requirement,
    Trial,
    make_check,
    unchanged_inputs_case,
)
from .inputs import lengths_mask, non_divisor, normal, qkv, scaled_scores, sizes, two_sided_mask
from .mistakes import finite_or_zero, safe_softmax
from .runner import peak_bytes, silenced


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
        if kind == "streaming":
            (n_long,) = sizes(rng, 1, 30, 60, exclude=(b1, n_q))  # rows of many blocks
            x = normal(rng, (b1, n_q, n_long), 3.0)
            return [((x, non_divisor(rng, n_long, exclude=(b1, n_q))), {})]
        raise KeyError(kind)

    return make


def _online_with(
    rescale="right", max_of="running", guard=True, init="neg_inf", per_block=False, carry=True
):
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
            if carry:
                m = m_new
        m = m if carry else m_new  # without `m = m_new`, the last block's maximum is used
        shift = finite_or_zero(m) if guard else m
        e = np.exp(x - shift)  # (..., n)
        if not guard:
            return e / denom
        return np.divide(e, denom, out=np.zeros_like(e), where=denom > 0)

    return online


class _Watched(np.ndarray):
    """An array that records the width of every reduction along its last axis in ``log``.

    Elementwise results computed from it (``x - m``, ``np.exp(...)``) are watched too, with the
    same log; slices are views and stay watched. Boolean results (``np.isfinite(x)``) and
    reductions are not: the maximum of a block is a statistic, not the row.
    """

    log: list[tuple[str, int]] | None = None

    def __array_finalize__(self, obj):
        self.log = getattr(obj, "log", None)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        log = next((a.log for a in inputs if isinstance(a, _Watched) and a.log is not None), None)
        plain = [a.view(np.ndarray) if isinstance(a, _Watched) else a for a in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(
                o.view(np.ndarray) if isinstance(o, _Watched) else o for o in kwargs["out"]
            )
        first = inputs[0]
        if method == "reduce" and log is not None and isinstance(first, _Watched) and first.ndim:
            axis = kwargs.get("axis", 0)
            axes = range(first.ndim) if axis is None else np.atleast_1d(axis)
            if first.ndim - 1 in {int(a) % first.ndim for a in axes}:
                log.append((ufunc.__name__, first.shape[-1]))
        result = getattr(ufunc, method)(*plain, **kwargs)
        if method == "__call__" and log is not None and "out" not in kwargs:
            if isinstance(result, np.ndarray) and result.dtype.kind == "f" and result.ndim:
                result = result.view(_Watched)
                result.log = log
        return result


#: What a reduction is called in the message, by ufunc name.
_REDUCTIONS = {"maximum": "maximum", "fmax": "maximum", "add": "sum", "logaddexp": "log-sum-exp"}


def _wide_reductions(trial: Trial) -> list[tuple[str, int]]:
    """The reductions along the last axis wider than ``block_size`` that the learner's function
    takes when called once more on a watched copy of ``x`` (none if it raises there)."""
    x, block_size = trial.args[:2]
    watched = np.array(x, copy=True).view(_Watched)
    watched.log = []
    try:
        with silenced():
            trial.fn(watched, block_size, *trial.args[2:], **trial.kwargs)
    except Exception:  # noqa: BLE001 - it ran fine on a plain array a moment ago
        return []
    return [(name, width) for name, width in watched.log if width > block_size]


def _reads_whole_rows(trial: Trial) -> str | None:
    wide = _wide_reductions(trial)
    if not wide:
        return None
    block_size = trial.args[1]
    name, width = wide[0]
    what = _REDUCTIONS.get(name, f"np.{name} reduction")
    return (
        "Your online_softmax returns the right values, but it does not read the rows one "
        f"block at a time: it took the {what} of a whole row at once ({width} entries, while "
        f"block_size = {block_size}), as a plain softmax does with np.max(x, axis=-1) or "
        "np.exp(x - m).sum(axis=-1). What is missing is the streaming: read each row in "
        "blocks of block_size columns, keep per row a running maximum m and a running sum "
        "total of exp(x - m), and when a block raises the maximum multiply total by "
        "np.exp(m_old - m_new) before adding the block's terms. Only the second pass, which "
        "writes np.exp(x - m) / total, touches the whole row, and it takes no maximum or sum. "
        "(This check watches every maximum and sum taken along the last axis of x, or of an "
        "array computed from x.)"
    )


#: No maximum or sum along the last axis spans more than ``block_size`` columns of x.
STREAMED = Requirement(_reads_whole_rows)


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
        "inputs_unchanged": unchanged_inputs_case(
            _online_inputs("inputs_unchanged"), "does not modify its input"
        ),
        "streaming": Case(
            "reads each row one block at a time (no maximum or sum over a whole row)",
            _online_inputs("streaming"),
            requires=(STREAMED,),
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
            "the running maximum was never updated (`m = m_new` missing): m stays -inf, so every "
            "block's factor np.exp(m - m_new) is 0 and the sum keeps only the last block",
            "after adding a block, carry its maximum to the next one: m = m_new",
            _online_with(carry=False),
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


#: Sizes of the "memory" case, [low, high): a tiny n_q, a very large n_k, and blocks large enough
#: that a loop over ``np.array_split(K, n_blocks)`` (about 300 bytes of Python objects per
#: block) stays well within the budget. One query's row of n_k float64 scores is 288-352 kB,
#: the budget 86-140 kB (:func:`memory_budget`).
MEMORY_SIZES = {"n_q": (3, 5), "n_k": (36_000, 44_001), "d_k": (8, 16), "d_v": (16, 24),
                 "block_size": (256, 384)}  # fmt: skip
#: Room for Python's own objects (frames, integers, array headers) while the loop runs: a loop
#: over ``np.array_split(K, n_blocks)`` holds about 300 bytes of them per block, 25-45 kB on the
#: memory case, and its peak stays 10-40 kB under the budget (measured 2026-12).
MEMORY_SLACK_BYTES = 32_000


def memory_budget(n_q: int, d_k: int, d_v: int, block_size: int, itemsize: int = 8) -> int:
    """Peak bytes ``tiled_attention`` may allocate: proportional to ``n_q · block_size``.

    Eight ``(n_q, block_size)`` blocks (scores, weights and their temporaries, or a copied
    block of keys), eight ``(n_q, d_k + d_v)`` arrays (the scaled queries, the accumulator, the
    output, the running maximum and sum) and :data:`MEMORY_SLACK_BYTES`. Nothing in it grows
    with ``n_k``.
    """
    return itemsize * 8 * n_q * (block_size + d_k + d_v) + MEMORY_SLACK_BYTES


def _kb(n_bytes: float) -> str:
    return f"{n_bytes / 1e3:,.0f} kB"


def _holds_whole_rows(trial: Trial) -> str | None:
    Q, K, V, block_size = trial.args[:4]
    n_q, d_k = Q.shape[-2:]
    n_k, d_v = V.shape[-2:]
    budget = memory_budget(n_q, d_k, d_v, block_size)
    try:
        peak = peak_bytes(trial.fn, trial.args, trial.kwargs)
    except Exception:  # noqa: BLE001 - it ran fine a moment ago in the value check
        return None
    if peak <= budget:
        return None
    row = n_k * np.dtype(np.float64).itemsize
    return (
        f"Your tiled_attention allocated {_kb(peak)} at its peak, but the check allows "
        f"{_kb(budget)}: room for a few blocks of scores (n_q × block_size = {n_q} × "
        f"{block_size}) and a few arrays of n_q rows, nothing that grows with n_k. One query's "
        f"whole row of scores, against all n_k = {n_k:,} keys, is {_kb(row)}: your peak is "
        f"{peak / row:.1f} such rows. So your function holds whole rows of scores instead of "
        "one block of keys at a time. This happens with a loop over the queries that scores "
        "each query against every key (K @ Q[i], a row of n_k scores), with the full n_q × n_k "
        "score matrix, with one block of all the keys (block_size ignored), with an n_q × n_k "
        "mask of ones made when mask is None (skip the masking instead), or with a copy of "
        "all of K or V (such as K / math.sqrt(d_k): scale Q instead). Compute one block at a "
        "time: loop over the keys, S = Q @ np.swapaxes(K[..., k0:k0 + block_size, :], -1, -2) "
        "of shape (..., n_q, block_size), and keep only the running maximum, the running sum "
        "and the accumulator between blocks."
    )


#: The peak allocation stays within :func:`memory_budget`, which does not grow with n_k.
TILES_ONLY = Requirement(_holds_whole_rows)


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
            n_q, n_k, d_k, d_v, block = (int(rng.integers(*r)) for r in MEMORY_SIZES.values())
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
            "holds one block of keys at a time, never a whole row of scores (peak measured)",
            _tiled_inputs("memory"),
            requires=(TILES_ONLY,),
        ),
        "inputs_unchanged": unchanged_inputs_case(_tiled_inputs("inputs_unchanged")),
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
