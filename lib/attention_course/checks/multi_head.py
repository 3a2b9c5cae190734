"""Notebook 07: ``multi_head_attention(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None)``.

Shape legend: ``...`` leading batch dimensions, ``n_q`` queries (rows of ``X``), ``n_k`` keys
(rows of ``Z``), ``d_k`` / ``d_v`` query/key and value widths of one head, ``n_heads`` heads,
``d_model`` / ``d_model_z`` widths of ``X`` / ``Z``, ``d_out`` width of the output.
"""

from __future__ import annotations

import math

import numpy as np

from .. import reference as ref
from .framework import Case, Exercise, Mistake, make_check, unchanged_inputs_case
from .inputs import lengths_mask, normal, sizes
from .mistakes import safe_softmax


def _mha_arrays(rng, lead_x, lead_z, n_q, n_k, d_model, d_model_z, d_k, d_v, d_out, n_heads,
                dtype=np.float64):  # fmt: skip
    X = normal(rng, (*lead_x, n_q, d_model), 1.0, dtype)
    Z = normal(rng, (*lead_z, n_k, d_model_z), 1.0, dtype)
    W_q = normal(rng, (d_model, n_heads * d_k), 1.0 / math.sqrt(d_model), dtype)
    W_k = normal(rng, (d_model_z, n_heads * d_k), 1.0 / math.sqrt(d_model_z), dtype)
    W_v = normal(rng, (d_model_z, n_heads * d_v), 1.0 / math.sqrt(d_model_z), dtype)
    W_o = normal(rng, (n_heads * d_v, d_out), 1.0 / math.sqrt(n_heads * d_v), dtype)
    return X, Z, W_q, W_k, W_v, W_o, n_heads


def _mha_sizes(rng, batch: bool, one_head: bool = False):
    """(batch sizes, n_heads, [n_q, n_k, d_model, d_model_z, d_k, d_v, d_out]), all different."""
    lead = tuple(sizes(rng, 2, 2, 6)) if batch else ()
    n_heads = 1 if one_head else sizes(rng, 1, 2, 7, exclude=lead)[0]
    dims = sizes(rng, 7, 2, 14, exclude=(*lead, n_heads))
    return lead, n_heads, dims


def _mha_inputs(kind: str):
    def make(rng):
        if kind == "random":
            _, h, dims = _mha_sizes(rng, batch=False)
            return [(_mha_arrays(rng, (), (), *dims, h), {})]
        if kind == "one_head":
            _, h, dims = _mha_sizes(rng, batch=False, one_head=True)
            return [(_mha_arrays(rng, (), (), *dims, h), {})]
        if kind in ("batch", "inputs_unchanged", "float32"):
            lead, h, dims = _mha_sizes(rng, batch=True)
            if kind == "float32":
                lead = lead[:1]
            dtype = np.float32 if kind == "float32" else np.float64
            return [(_mha_arrays(rng, lead, lead, *dims, h, dtype=dtype), {})]
        if kind == "mask":
            _, h, dims = _mha_sizes(rng, batch=False)
            n_q, n_k = dims[:2]
            causal = ((*_mha_arrays(rng, (), (), *dims, h), np.tri(n_q, n_k, dtype=bool)), {})
            lead, h, dims = _mha_sizes(rng, batch=True)
            b = lead[0]
            lengths = rng.integers(1, dims[1], size=b)
            padding = (
                (*_mha_arrays(rng, (b,), (b,), *dims, h), lengths_mask(lengths, dims[1])),
                {},
            )
            return [causal, padding]
        raise KeyError(kind)

    return make


def _mha_mask_probe(rng):
    """Batch size = n_heads and a padding mask whose lengths all differ: a mask used without a
    head axis then runs, but gives head h the padding of sequence h."""
    b = sizes(rng, 1, 2, 6)[0]
    n_q, n_k, d_model, d_model_z, d_k, d_v, d_out = sizes(rng, 7, 2, 14, exclude=(b,))
    n_k = max(n_k, b + 2)
    arrays = _mha_arrays(rng, (b,), (b,), n_q, n_k, d_model, d_model_z, d_k, d_v, d_out, b)
    lengths = rng.choice(np.arange(1, n_k), size=b, replace=False)
    return (*arrays, lengths_mask(lengths, n_k)), {}


def _mha_with(
    split="contiguous",
    width="head",
    project=True,
    softmax_axis=-1,
    reverse_heads=False,
    weights_layout="heads",
    head_axis_on_mask=True,
    only_output=False,
):
    """Multi-head attention with one deliberate change to the textbook version."""

    def split_heads(A, n_heads, d):
        if split == "strided":  # column c = i·n_heads + h goes to head h
            A = A.reshape(*A.shape[:-1], d, n_heads)  # (..., n, d, n_heads)
            return np.moveaxis(A, -1, -3)  # -> (..., n_heads, n, d)
        A = A.reshape(*A.shape[:-1], n_heads, d)  # (..., n, n_heads, d)
        return np.swapaxes(A, -2, -3)  # -> (..., n_heads, n, d)

    def mha(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
        d_k, d_v = W_q.shape[1] // n_heads, W_v.shape[1] // n_heads
        Q = split_heads(X @ W_q, n_heads, d_k)  # (..., n_heads, n_q, d_k)
        K = split_heads(Z @ W_k, n_heads, d_k)  # (..., n_heads, n_k, d_k)
        V = split_heads(Z @ W_v, n_heads, d_v)  # (..., n_heads, n_k, d_v)
        scale = {"head": d_k, "total": n_heads * d_k, "none": 1}[width]
        scores = Q @ np.swapaxes(K, -1, -2) / scale**0.5  # (..., n_heads, n_q, n_k)
        if mask is not None:
            mask = np.asarray(mask)
            scores = np.where(mask[..., None, :, :] if head_axis_on_mask else mask, scores, -np.inf)
        weights = safe_softmax(scores, axis=softmax_axis)
        heads = weights @ V  # (..., n_heads, n_q, d_v)
        if reverse_heads:
            heads = heads[..., ::-1, :, :]
        heads = np.swapaxes(heads, -2, -3)  # (..., n_q, n_heads, d_v)
        concat = heads.reshape(*heads.shape[:-2], n_heads * d_v)  # (..., n_q, n_heads·d_v)
        output = concat @ W_o if project else concat
        if weights_layout == "queries":
            weights = np.swapaxes(weights, -2, -3)  # (..., n_q, n_heads, n_k)
        elif weights_layout == "mean":
            weights = weights.mean(axis=-3)  # (..., n_q, n_k)
        return output if only_output else (output, weights)

    return mha


_MHA = Exercise(
    name="multi_head_attention",
    arg_names=("X", "Z", "W_q", "W_k", "W_v", "W_o", "n_heads", "mask"),
    reference=lambda X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None: ref.multi_head_attention(
        X, Z, W_q, W_k, W_v, W_o, n_heads, mask=mask
    ),
    n_outputs=2,
    output_names=("output", "weights"),
    signature="multi_head_attention(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None)",
    arg_layouts=(
        "(..., n_q, d_model)",
        "(..., n_k, d_model_z)",
        "(d_model, n_heads·d_k)",
        "(d_model_z, n_heads·d_k)",
        "(d_model_z, n_heads·d_v)",
        "(n_heads·d_v, d_out)",
        "",
        "(..., n_q, n_k)",
    ),
    output_layouts=("(..., n_q, d_out)", "(..., n_heads, n_q, n_k)"),
    cases={
        "random": Case("matches the reference on random 2-D input", _mha_inputs("random")),
        "batch": Case("works with leading batch dimensions", _mha_inputs("batch")),
        "mask": Case(
            "applies a causal and a padding mask to every head",
            _mha_inputs("mask"),
        ),
        "one_head": Case(
            "with n_heads = 1, is single-head attention followed by W_o", _mha_inputs("one_head")
        ),
        "float32": Case("works in float32", _mha_inputs("float32")),
        "inputs_unchanged": unchanged_inputs_case(_mha_inputs("inputs_unchanged")),
    },
    mistakes=(
        Mistake(
            "heads split with a strided reshape (..., d_k, n_heads): head h got the columns "
            "h, h + n_heads, h + 2·n_heads, … instead of its contiguous block h·d_k:(h+1)·d_k",
            "reshape to (..., n, n_heads, d_k) — the head first, then its d_k columns — and "
            "move the head axis before the rows with np.swapaxes(..., -2, -3)",
            _mha_with(split="strided"),
        ),
        Mistake(
            "scaled by √(n_heads·d_k), the total width, instead of √d_k of one head",
            "each head's score is a dot product of d_k = W_q.shape[1] // n_heads numbers: "
            "divide by math.sqrt(d_k) of one head",
            _mha_with(width="total"),
        ),
        Mistake(
            "no scaling: the scores were not divided by √d_k",
            "divide each head's scores by math.sqrt(d_k), d_k = W_q.shape[1] // n_heads",
            _mha_with(width="none"),
        ),
        Mistake(
            "W_o forgotten: returned the concatenated heads (..., n_q, n_heads·d_v)",
            "project the concatenation with the output matrix: concat @ W_o gives "
            "(..., n_q, d_out)",
            _mha_with(project=False),
        ),
        Mistake(
            "softmax taken over the head axis instead of the key axis",
            "normalise each query's row of scores within its head: softmax over axis=-1 of the "
            "(..., n_heads, n_q, n_k) scores",
            _mha_with(softmax_axis=-3),
        ),
        Mistake(
            "heads concatenated in reverse order",
            "concatenate head 0, head 1, …, head n_heads-1 in this order, so that head h fills "
            "the rows h·d_v:(h+1)·d_v of W_o",
            _mha_with(reverse_heads=True),
        ),
        Mistake(
            "weights returned with shape (..., n_q, n_heads, n_k) instead of "
            "(..., n_heads, n_q, n_k)",
            "keep the head axis before the queries: weights[..., h, :, :] is the map of head h",
            _mha_with(weights_layout="queries"),
        ),
        Mistake(
            "weights averaged over the heads (what PyTorch's nn.MultiheadAttention returns by "
            "default, average_attn_weights=True) instead of one map per head",
            "return every head's weights, shape (..., n_heads, n_q, n_k)",
            _mha_with(weights_layout="mean"),
        ),
        Mistake(
            "the mask was not given a head axis: a padding mask (batch, 1, n_k) then lines "
            "its batch axis up with the head axis of the scores (..., n_heads, n_q, n_k)",
            "insert the head axis before the queries: mask[..., None, :, :] has shape "
            "(..., 1, n_q, n_k) and applies to every head",
            _mha_with(head_axis_on_mask=False),
            probe=_mha_mask_probe,
        ),
        Mistake(
            "returned only the output, not (output, weights)",
            "return a tuple: return output, weights",
            _mha_with(only_output=True),
        ),
    ),
    forbidden=frozenset({"multi_head_attention"}),
)


check_multi_head_attention = make_check(_MHA)
