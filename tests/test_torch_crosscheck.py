"""Optional cross-check of :mod:`attention_course.reference` against PyTorch.

PyTorch is **not** a dependency of the course: this whole module is skipped when ``torch``
cannot be imported. Where it is installed, it checks

- :func:`~attention_course.reference.scaled_dot_product_attention` and
  :func:`~attention_course.reference.tiled_attention` against
  ``torch.nn.functional.scaled_dot_product_attention`` (boolean ``attn_mask``, True = may
  attend, the same convention as ours; ``is_causal=True`` against
  :func:`~attention_course.reference.causal_mask`, also for ``n_q != n_k``; padding masks);
- :func:`~attention_course.reference.multi_head_attention` against ``nn.MultiheadAttention``
  with its weights mapped to our layout (``W = torch_weight.T``). Beware: the boolean
  ``attn_mask`` of ``nn.MultiheadAttention`` is True where a query may **not** attend, the
  opposite of SDPA's, and ``key_padding_mask`` is True at the padded keys;
- :func:`~attention_course.reference.grouped_query_attention` against SDPA with
  ``enable_gqa=True`` (the heads split and projected by hand);
- :func:`~attention_course.reference.attention_backward` and
  :func:`~attention_course.reference.softmax_backward` against autograd: ``backward`` of
  ``sum(output * grad_output)`` through ``F.scaled_dot_product_attention`` (and through
  ``torch.softmax``) gives the gradients with respect to Q, K, V (and the scores).

Fully masked query rows: our reference gives zero weights and a zero output. PyTorch 2.13's
SDPA gives zeros too, but ``nn.MultiheadAttention`` (need_weights=True) gives NaN there, and
older SDPA versions did as well; such rows are compared only when PyTorch's row is finite.

Shape legend: ``...`` batch dims, ``n_q`` queries, ``n_k`` keys, ``d_k`` query/key width,
``d_v`` value width; all different in every case.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from attention_course import reference as ref

torch = pytest.importorskip("torch")
F = torch.nn.functional

TOL = {np.float32: 1e-5, np.float64: 1e-12}


def torch_sdpa(Q, K, V, mask=None, is_causal=False, scale=None):
    """PyTorch's SDPA on NumPy arrays, returning a NumPy array (..., n_q, d_v)."""
    t = [torch.from_numpy(np.ascontiguousarray(a)) for a in (Q, K, V)]
    attn_mask = None if mask is None else torch.from_numpy(np.ascontiguousarray(mask))
    out = F.scaled_dot_product_attention(*t, attn_mask=attn_mask, is_causal=is_causal,
                                         scale=scale)  # fmt: skip
    return out.numpy()


def assert_matches_torch(actual, expected, mask_rows_fully_masked, what, dtype):
    """Compare, skipping fully masked rows only where PyTorch gave NaN there."""
    expected = np.array(expected)
    nan_rows = np.isnan(expected).any(axis=-1)
    assert not (nan_rows & ~mask_rows_fully_masked).any(), f"{what}: torch gave NaN in a live row"
    expected[nan_rows] = 0.0  # ours is zero there; torch's NaN means "undefined"
    tol = TOL[np.dtype(dtype).type]
    assert_allclose(actual, expected, rtol=tol, atol=tol, err_msg=f"{what} differs from torch")


def qkv(seed, batch, n_q, n_k, d_k, d_v, dtype):
    rng = np.random.default_rng(seed)
    Q = rng.standard_normal((*batch, n_q, d_k)).astype(dtype)
    K = rng.standard_normal((*batch, n_k, d_k)).astype(dtype)
    V = rng.standard_normal((*batch, n_k, d_v)).astype(dtype)
    return Q, K, V


SIZES = [  # (batch, n_q, n_k, d_k, d_v): always different
    ((), 3, 5, 4, 6),
    ((2,), 7, 4, 3, 5),
    ((2, 3), 5, 9, 6, 2),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("mask_kind", ["none", "random", "padding"])
def test_attention_and_tiled_attention_match_torch_sdpa(dtype, sizes, mask_kind):
    batch, n_q, n_k, d_k, d_v = sizes
    Q, K, V = qkv(0, batch, n_q, n_k, d_k, d_v, dtype)
    rng = np.random.default_rng(1)
    if mask_kind == "random":
        mask = rng.random((*batch, n_q, n_k)) < 0.5
        mask[..., 1, :] = False  # a fully masked query
    elif mask_kind == "padding":
        lengths = rng.integers(0, n_k + 1, size=batch[-1] if batch else 1)
        mask = ref.padding_mask(lengths, n_k)  # (batch, 1, n_k)
        if not batch:
            mask = mask[0]  # (1, n_k): torch cannot add a batch axis that Q, K, V lack
    else:
        mask = None
    expected = torch_sdpa(Q, K, V, mask)
    dead = np.zeros((*batch, n_q), bool)
    if mask is not None:
        dead = ~np.broadcast_to(mask, (*batch, n_q, n_k)).any(axis=-1)  # (..., n_q)
    output, _ = ref.scaled_dot_product_attention(Q, K, V, mask=mask)
    assert_matches_torch(output, expected, dead, "scaled_dot_product_attention", dtype)
    for block_size, q_block_size in [(1, None), (2, 3), (n_k, 1), (n_k + 2, None)]:
        tiled = ref.tiled_attention(Q, K, V, block_size, mask=mask, q_block_size=q_block_size)
        what = f"tiled_attention(block_size={block_size}, q_block_size={q_block_size})"
        assert_matches_torch(tiled, expected, dead, what, dtype)


@pytest.mark.parametrize("n_q, n_k", [(6, 6), (4, 7), (7, 4)])
def test_causal_mask_is_torch_is_causal_also_when_n_q_differs_from_n_k(n_q, n_k):
    Q, K, V = qkv(2, (2,), n_q, n_k, 3, 5, np.float64)
    expected = torch_sdpa(Q, K, V, is_causal=True)
    mask = ref.causal_mask(n_q, n_k)
    dead = np.broadcast_to(~mask.any(axis=-1), (2, n_q))  # none: query 0 always sees key 0
    output, _ = ref.scaled_dot_product_attention(Q, K, V, mask=mask)
    assert_matches_torch(output, expected, dead, "causal attention", np.float64)
    tiled = ref.tiled_attention(Q, K, V, 3, mask=mask, q_block_size=2)
    assert_matches_torch(tiled, expected, dead, "causal tiled_attention", np.float64)


def test_an_explicit_scale_matches_torch():
    Q, K, V = qkv(3, (2,), 5, 6, 4, 3, np.float64)
    expected = torch_sdpa(Q, K, V, scale=0.37)
    output, _ = ref.scaled_dot_product_attention(Q, K, V, scale=0.37)
    tiled = ref.tiled_attention(Q, K, V, 4, scale=0.37)
    no_dead = np.zeros((2, 5), bool)
    assert_matches_torch(output, expected, no_dead, "attention with scale=0.37", np.float64)
    assert_matches_torch(tiled, expected, no_dead, "tiled_attention with scale=0.37", np.float64)


@pytest.mark.parametrize("mask_kind", ["none", "causal", "padding"])
def test_multi_head_attention_matches_torch_multihead_attention(mask_kind):
    """nn.MultiheadAttention needs n_heads·d_k = n_heads·d_v = d_model = d_out (embed_dim)."""
    batch, n_q, n_k, n_heads, d_model, d_model_z = 2, 5, 6, 3, 12, 7  # head width 4
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(
        d_model,
        n_heads,
        bias=False,
        kdim=d_model_z,
        vdim=d_model_z,
        batch_first=True,
        dtype=torch.float64,
    )
    W_q = mha.q_proj_weight.detach().numpy().T  # (d_model, n_heads·d_k)
    W_k = mha.k_proj_weight.detach().numpy().T  # (d_model_z, n_heads·d_k)
    W_v = mha.v_proj_weight.detach().numpy().T  # (d_model_z, n_heads·d_v)
    W_o = mha.out_proj.weight.detach().numpy().T  # (n_heads·d_v, d_out)
    rng = np.random.default_rng(4)
    X = rng.standard_normal((batch, n_q, d_model))
    Z = rng.standard_normal((batch, n_k, d_model_z))

    mask, torch_kwargs = None, {}
    if mask_kind == "causal":
        mask = ref.causal_mask(n_q, n_k)  # (n_q, n_k)
        torch_kwargs["attn_mask"] = torch.from_numpy(~mask)  # torch MHA: True = may NOT attend
    elif mask_kind == "padding":
        lengths = np.array([4, 0])  # the second sequence has no key: fully masked queries
        mask = ref.padding_mask(lengths, n_k)  # (batch, 1, n_k)
        torch_kwargs["key_padding_mask"] = torch.from_numpy(~mask[:, 0, :])  # True = padded
    output, weights = ref.multi_head_attention(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=mask)
    with torch.no_grad():
        t_X, t_Z = torch.from_numpy(X), torch.from_numpy(Z)
        t_out, t_weights = mha(t_X, t_Z, t_Z, need_weights=True, average_attn_weights=False,
                               **torch_kwargs)  # fmt: skip

    dead = np.zeros((batch, n_q), bool)
    if mask is not None:
        dead = ~np.broadcast_to(mask, (batch, n_q, n_k)).any(axis=-1)  # (batch, n_q)
    assert_matches_torch(output, t_out.numpy(), dead, "multi-head output", np.float64)
    assert weights.shape == tuple(t_weights.shape) == (batch, n_heads, n_q, n_k)
    dead_heads = np.broadcast_to(dead[:, None, :], (batch, n_heads, n_q))
    assert_matches_torch(weights, t_weights.numpy(), dead_heads, "multi-head weights",
                         np.float64)  # fmt: skip


def test_self_attention_with_packed_in_proj_weight_matches_torch():
    """The packed in_proj_weight (3·d_model, d_model) holds W_qᵀ, W_kᵀ, W_vᵀ stacked."""
    batch, n, n_heads, d_model = 3, 6, 2, 8
    torch.manual_seed(1)
    mha = torch.nn.MultiheadAttention(d_model, n_heads, bias=False, batch_first=True,
                                      dtype=torch.float64)  # fmt: skip
    packed = mha.in_proj_weight.detach().numpy()  # (3·d_model, d_model)
    W_q, W_k, W_v = (block.T for block in np.split(packed, 3, axis=0))  # each (d_model, d_model)
    W_o = mha.out_proj.weight.detach().numpy().T
    X = np.random.default_rng(5).standard_normal((batch, n, d_model))
    mask = ref.causal_mask(n)
    output, weights = ref.multi_head_attention(X, X, W_q, W_k, W_v, W_o, n_heads, mask=mask)
    with torch.no_grad():
        t_x = torch.from_numpy(X)
        t_out, t_weights = mha(t_x, t_x, t_x, attn_mask=torch.from_numpy(~mask),
                               need_weights=True, average_attn_weights=False)  # fmt: skip
    no_dead = np.zeros((batch, n), bool)
    assert_matches_torch(output, t_out.numpy(), no_dead, "causal self-attention", np.float64)
    no_dead_heads = np.zeros((batch, n_heads, n), bool)
    assert_matches_torch(weights, t_weights.numpy(), no_dead_heads, "its weights", np.float64)


def torch_sdpa_gradients(Q, K, V, grad_output, mask=None, scale=None):
    """Autograd's gradients of SDPA: (grad_Q, grad_K, grad_V), NumPy arrays shaped like Q, K, V.

    ``backward(grad_output)`` through broadcast inputs sums over the broadcast axes, as ours.
    """
    t = [torch.tensor(a, requires_grad=True) for a in (Q, K, V)]
    attn_mask = None if mask is None else torch.from_numpy(np.ascontiguousarray(mask))
    out = F.scaled_dot_product_attention(*t, attn_mask=attn_mask, scale=scale)
    out.backward(torch.from_numpy(np.ascontiguousarray(grad_output)))
    return tuple(a.grad.numpy() for a in t)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("mask_kind", ["none", "random"])
@pytest.mark.parametrize("scale", [None, 1.0])
def test_attention_backward_matches_torch_autograd(dtype, sizes, mask_kind, scale):
    batch, n_q, n_k, d_k, d_v = sizes
    Q, K, V = qkv(6, batch, n_q, n_k, d_k, d_v, dtype)
    rng = np.random.default_rng(7)
    grad_output = rng.standard_normal((*batch, n_q, d_v)).astype(dtype)
    mask = None
    if mask_kind == "random":
        mask = rng.random((*batch, n_q, n_k)) < 0.5
        mask[..., 1, :] = False  # a fully masked query
        mask[..., 0, 0] = True  # and a live one
    expected = torch_sdpa_gradients(Q, K, V, grad_output, mask, scale)
    actual = ref.attention_backward(Q, K, V, grad_output, mask=mask, scale=scale)
    dead = np.zeros((*batch, n_q), bool)
    if mask is not None:
        dead = ~mask.any(axis=-1)  # (..., n_q)
    grad_Q, grad_K, grad_V = actual
    # Rows of grad_Q belong to queries; torch may give NaN for a fully masked query's row.
    assert_matches_torch(grad_Q, expected[0], dead, "grad_Q", dtype)
    if np.isnan(expected[1]).any() or np.isnan(expected[2]).any():
        pytest.skip("this PyTorch spreads NaN from a fully masked query into grad_K / grad_V")
    no_dead_keys = np.zeros((*batch, n_k), bool)
    assert_matches_torch(grad_K, expected[1], no_dead_keys, "grad_K", dtype)
    assert_matches_torch(grad_V, expected[2], no_dead_keys, "grad_V", dtype)


def test_attention_backward_of_shared_keys_matches_torch_autograd():
    """K and V shared by the batch (no batch axis): autograd sums their gradients over it."""
    rng = np.random.default_rng(8)
    Q = rng.standard_normal((3, 4, 5))  # (batch, n_q, d_k)
    K, V = rng.standard_normal((6, 5)), rng.standard_normal((6, 2))  # (n_k, d_k), (n_k, d_v)
    grad_output = rng.standard_normal((3, 4, 2))  # (batch, n_q, d_v)
    expected = torch_sdpa_gradients(Q, np.broadcast_to(K, (3, 6, 5)).copy(),
                                     np.broadcast_to(V, (3, 6, 2)).copy(), grad_output)  # fmt: skip
    grad_Q, grad_K, grad_V = ref.attention_backward(Q, K, V, grad_output)
    no_dead = np.zeros((3, 4), bool)
    assert_matches_torch(grad_Q, expected[0], no_dead, "grad_Q", np.float64)
    assert_matches_torch(grad_K, expected[1].sum(axis=0), np.zeros(6, bool), "grad_K", np.float64)
    assert_matches_torch(grad_V, expected[2].sum(axis=0), np.zeros(6, bool), "grad_V", np.float64)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_backward_matches_torch_autograd(axis):
    rng = np.random.default_rng(9)
    scores = rng.standard_normal((2, 3, 5))  # (batch, n_q, n_k)
    grad_weights = rng.standard_normal((2, 3, 5))
    t_scores = torch.tensor(scores, requires_grad=True)
    torch.softmax(t_scores, dim=axis).backward(torch.from_numpy(grad_weights))
    weights = ref.softmax(scores, axis=axis)
    actual = ref.softmax_backward(weights, grad_weights, axis=axis)
    assert_allclose(actual, t_scores.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("n_heads", "n_kv_heads"), [(6, 2), (4, 1), (3, 3)])
@pytest.mark.parametrize("causal", [False, True])
def test_grouped_query_attention_matches_torch_sdpa_with_enable_gqa(n_heads, n_kv_heads, causal):
    """Heads split by hand, then torch's SDPA with ``enable_gqa=True`` (query head h reads kv
    head h // (n_heads // n_kv_heads)), concatenated and projected by W_o."""
    rng = np.random.default_rng(10)
    batch, n, d_model, d_k, d_v, d_out = (2,), 7, 5, 4, 3, 8
    X = rng.standard_normal((*batch, n, d_model))  # (..., n, d_model)
    W_q = rng.standard_normal((d_model, n_heads * d_k))
    W_k = rng.standard_normal((d_model, n_kv_heads * d_k))
    W_v = rng.standard_normal((d_model, n_kv_heads * d_v))
    W_o = rng.standard_normal((n_heads * d_v, d_out))

    def heads(Y, count):  # (..., n, count·d) -> (..., count, n, d)
        return torch.from_numpy(np.swapaxes(Y.reshape(*Y.shape[:-1], count, -1), -2, -3).copy())

    out = F.scaled_dot_product_attention(
        heads(X @ W_q, n_heads),  # (..., n_heads, n, d_k)
        heads(X @ W_k, n_kv_heads),  # (..., n_kv_heads, n, d_k)
        heads(X @ W_v, n_kv_heads),  # (..., n_kv_heads, n, d_v)
        is_causal=causal,
        enable_gqa=True,
    ).numpy()  # (..., n_heads, n, d_v)
    concat = np.swapaxes(out, -2, -3).reshape(*batch, n, n_heads * d_v)  # (..., n, n_heads·d_v)
    expected = concat @ W_o  # (..., n, n_heads·d_v) @ (n_heads·d_v, d_out) -> (..., n, d_out)
    mask = ref.causal_mask(n) if causal else None
    actual, _ = ref.grouped_query_attention(X, X, W_q, W_k, W_v, W_o, n_heads, n_kv_heads, mask)
    assert_allclose(actual, expected, rtol=1e-10, atol=1e-10)
