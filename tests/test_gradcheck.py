"""Tests of :mod:`attention_course.gradcheck`: a backward pass against central differences.

The reference passes; a mistake of the issue's list (the missing -ppᵀ term, dS @ Q for
dSᵀ @ Q) fails on the gradients it touches and only those; a stub, an error and a wrong return
give a sentence instead of raising. All dimensions differ.

Shape legend: ``n_q`` queries, ``n_k`` keys, ``d_k`` query/key width, ``d_v`` value width.
"""

from __future__ import annotations

import numpy as np
import pytest

from attention_course import gradcheck
from attention_course import reference as ref

N_Q, N_K, D_K, D_V = 3, 5, 4, 2


def _inputs(seed=0, batch=()):
    rng = np.random.default_rng(seed)
    Q = rng.standard_normal((*batch, N_Q, D_K))  # (..., n_q, d_k)
    K = rng.standard_normal((*batch, N_K, D_K))  # (..., n_k, d_k)
    V = rng.standard_normal((*batch, N_K, D_V))  # (..., n_k, d_v)
    dO = rng.standard_normal((*batch, N_Q, D_V))  # (..., n_q, d_v)
    return Q, K, V, dO


def _backward_with(mistake):
    def attention_backward(Q, K, V, grad_output, mask=None, scale=None):
        scale = D_K**-0.5 if scale is None else scale
        P = ref.softmax(scale * Q @ np.swapaxes(K, -1, -2))  # (..., n_q, n_k)
        dV = np.swapaxes(P, -1, -2) @ grad_output  # (..., n_k, n_q) @ (..., n_q, d_v)
        dP = grad_output @ np.swapaxes(V, -1, -2)  # (..., n_q, d_v) @ (..., d_v, n_k)
        dS = P * dP if mistake == "no_ppt" else ref.softmax_backward(P, dP)  # (..., n_q, n_k)
        dQ = scale * dS @ K  # (..., n_q, n_k) @ (..., n_k, d_k)
        dS_for_K = dS if mistake == "dS_Q" else np.swapaxes(dS, -1, -2)
        dK = scale * dS_for_K @ Q  # (..., n_k, n_q) @ (..., n_q, d_k), or a wrong product
        return dQ, dK, dV

    return attention_backward


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_reference_agrees_with_central_differences(seed):
    Q, K, V, dO = _inputs(seed, batch=(2,))
    mask = np.random.default_rng(seed).random((2, N_Q, N_K)) < 0.7
    mask[0, 1] = False  # a fully masked query
    check = gradcheck.compare_with_numerical(ref.attention_backward, Q, K, V, dO, mask=mask)
    assert check.passed and check.problem is None and len(check.errors) == 3, str(check)
    assert max(check.errors) < gradcheck.TOLERANCE / 100
    assert str(check).count("✓") == 3


def test_a_missing_ppt_term_fails_on_grad_q_and_grad_k_only():
    check = gradcheck.compare_with_numerical(_backward_with("no_ppt"), *_inputs())
    assert not check.passed
    assert check.errors[0] > 1e-2 and check.errors[1] > 1e-2 and check.errors[2] < 1e-6
    assert "grad_Q: largest difference" in str(check) and "✗" in str(check)


def test_ds_q_instead_of_dst_q_fails_on_grad_k_when_n_q_equals_n_k():
    rng = np.random.default_rng(3)
    Q, K = rng.standard_normal((4, D_K)), rng.standard_normal((4, D_K))  # n_q = n_k = 4
    V, dO = rng.standard_normal((4, D_V)), rng.standard_normal((4, D_V))
    check = gradcheck.compare_with_numerical(_backward_with("dS_Q"), Q, K, V, dO)
    assert check.errors[1] > 1e-2 and check.errors[0] < 1e-6 and not check.passed


def test_a_stub_an_error_and_a_wrong_return_give_a_sentence():
    def attention_backward(Q, K, V, grad_output, mask=None, scale=None):
        raise NotImplementedError()

    check = gradcheck.compare_with_numerical(attention_backward, *_inputs())
    assert str(check) == "attention_backward is not written yet: nothing to compare."
    assert not check.passed

    def transposed(Q, K, V, grad_output, mask=None, scale=None):
        return Q.T @ K  # (d_k, n_q) @ (n_k, d_k): does not fit

    assert "transposed raised ValueError" in str(gradcheck.compare_with_numerical(
        transposed, *_inputs()))  # fmt: skip

    def two(Q, K, V, grad_output, mask=None, scale=None):
        return Q, K

    assert "must return three arrays" in str(gradcheck.compare_with_numerical(two, *_inputs()))

    def swapped(Q, K, V, grad_output, mask=None, scale=None):
        dQ, dK, dV = ref.attention_backward(Q, K, V, grad_output, mask, scale)
        return dK, dQ, dV

    message = str(gradcheck.compare_with_numerical(swapped, *_inputs()))
    assert message == (
        f"swapped returned shapes [{(N_K, D_K)}, {(N_Q, D_K)}, {(N_K, D_V)}], expected "
        f"[{(N_Q, D_K)}, {(N_K, D_K)}, {(N_K, D_V)}]."
    )


def test_nan_in_a_gradient_fails():
    def nan_backward(Q, K, V, grad_output, mask=None, scale=None):
        dQ, dK, dV = ref.attention_backward(Q, K, V, grad_output, mask, scale)
        return dQ, dK, np.full_like(dV, np.nan)

    check = gradcheck.compare_with_numerical(nan_backward, *_inputs())
    assert check.errors[2] == float("inf") and not check.passed
