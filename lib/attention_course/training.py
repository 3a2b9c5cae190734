"""A toy retrieval task, trained: why 1/√d_k matters for learning (notebook 09).

*Attention Is All You Need* (§3.2.1) scales the scores because, without it, "the dot products
grow large in magnitude, pushing the softmax function into regions where it has extremely
small gradients". This module lets a learner watch that happen in a training run.

**The task.** Every example is a small set of ``n_k`` distinct tokens, drawn from a vocabulary
of ``n_vocab`` tokens with fixed random embeddings, each token holding a fresh random value
vector. Each of ``n_q`` queries is the embedding of one of those tokens, and must fetch *that
token's value*: the target of query ``i`` is ``V[target_i]``. The model is one attention layer

    Q = X_q W_q,  K = X_k W_k,  output = attention(Q, K, V, scale),

with learnable ``W_q``, ``W_k`` (``V`` is the data, not learned), and the loss is on the
attention **output**: the squared error ``|output_i - V[target_i]|²`` averaged over queries.
Solving it means making ``q_i · k_j`` large exactly for ``j = target_i``. Scaled attention
(``scale = 1/√d_k``) starts with soft weights and learns. Unscaled attention (``scale = 1``)
starts with nearly one-hot weights on a random key. Its first steps are large (the rows that
are not yet saturated pass gradients multiplied by 1 instead of 1/√d_k), then its rows
saturate and on most steps little or no gradient reaches ``W_q`` and ``W_k``: at d_k = 256
and 1024 it ends far above scaled attention, for every seed ``tests/test_training.py`` tries.
Its runs are chaotic -- a rounding difference early on leads elsewhere, to a loss as stuck.

**The cost.** Notebook 09 trains twelve runs in one cell, within the course's budget of half an
empty notebook's time on a 2-core machine. So the defaults are small: 64 steps of 5 examples
(``DEFAULT_STEPS``, ``RetrievalTask``), float64, one BLAS thread, and the four runs of one
``d_k`` (scaled or not, SGD or Adam) trained side by side by :func:`compare_scaling`, one
forward and one ``backward`` call per scale and step. At d_k = 1024 the cost is the
arithmetic: the projections ``X W`` and their gradients ``Xᵀ dQ`` take about half of it.
float32 saved about a third, but it rounds the saturated weights to exact zeros, and then the
gradient of unscaled attention is exactly 0 on some steps (a log-scale figure cannot show it).

The gradients come from a ``backward`` function with the signature of
:func:`attention_course.reference.attention_backward`; pass your own to train with it.

Shape legend:

- ``B``        examples in a batch.
- ``n_q``      queries per example; ``n_k`` keys (and values) per example.
- ``d_model``  width of a token embedding; ``n_vocab`` tokens in the vocabulary.
- ``d_k``      width of a query and a key (the width being swept); ``d_v`` width of a value.

Random numbers: one seed fixes everything of a run, through independent streams
``np.random.default_rng((seed, stream))`` for the vocabulary, the initial weights, the
training batches and the evaluation batch. So runs that differ only in ``scaled`` or the
optimiser see the same vocabulary, the same batches and (for the same ``d_k``) the same
initial weights.

Used by notebook 09.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

import numpy as np
from threadpoolctl import threadpool_limits

from . import reference as ref

__all__ = [
    "Optimiser",
    "RetrievalTask",
    "Batch",
    "TrainingRun",
    "SGD",
    "Adam",
    "DEFAULT_LR",
    "DEFAULT_STEPS",
    "make_batch",
    "retrieval_loss",
    "loss_and_gradients",
    "train_retrieval",
    "compare_scaling",
]

#: A backward pass with the signature of :func:`attention_course.reference.attention_backward`.
Backward = Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]]

# Independent random streams of one seed.
_VOCAB, _INIT, _TRAIN, _EVAL = 0, 1, 2, 3


class Optimiser(StrEnum):
    """Which update rule :func:`train_retrieval` uses."""

    SGD = "sgd"
    ADAM = "adam"


#: Learning rates used unless :func:`train_retrieval` is given one; the same for scaled and
#: unscaled runs, so the comparison is fair. Chosen so that scaled attention learns the task
#: within ``DEFAULT_STEPS`` at every d_k from 16 to 1024 (with SGD at 1.0, scaled attention
#: at d_k = 16 failed to learn for some seeds).
DEFAULT_LR = {Optimiser.SGD: 0.5, Optimiser.ADAM: 0.02}

#: Updates per run unless told otherwise: enough for scaled attention to learn and unscaled
#: attention to get stuck, few enough for notebook 09's time budget.
DEFAULT_STEPS = 64


@dataclass(frozen=True)
class RetrievalTask:
    """Sizes of the toy retrieval task (every one different, so a swapped axis shows).

    Attributes
    ----------
    n_vocab : int
        Tokens in the vocabulary.
    d_model : int
        Width of a token embedding (entries standard normal).
    n_k : int
        Tokens (keys and values) per example, distinct.
    n_q : int
        Queries per example.
    d_v : int
        Width of a value (entries standard normal, fresh for every example).
    batch_size : int
        Examples per training step.
    eval_size : int
        Examples in the held-out batch the final loss is measured on.
    """

    n_vocab: int = 32
    d_model: int = 16
    n_k: int = 8
    n_q: int = 4
    d_v: int = 6
    batch_size: int = 5
    eval_size: int = 32


@dataclass(frozen=True)
class Batch:
    """One batch of the retrieval task.

    Attributes
    ----------
    X_q : (B, n_q, d_model) ndarray
        Query embeddings: each is the embedding of one of the example's tokens.
    X_k : (B, n_k, d_model) ndarray
        Key embeddings: the example's tokens.
    V : (B, n_k, d_v) ndarray
        Values, one per token of the example.
    target : (B, n_q) ndarray of int
        Index (in ``0 … n_k-1``) of the key each query must fetch.
    """

    X_q: np.ndarray
    X_k: np.ndarray
    V: np.ndarray
    target: np.ndarray

    @cached_property  # computed once per batch: every run trained on it reads it
    def wanted(self) -> np.ndarray:
        """The values the queries must fetch, ``V[b, target[b, i]]``: (B, n_q, d_v)."""
        return np.take_along_axis(self.V, self.target[..., None], axis=-2)  # (B, n_q, d_v)


def _vocabulary(task: RetrievalTask, seed: int) -> np.ndarray:
    """The fixed token embeddings of a run: (n_vocab, d_model), entries standard normal."""
    return np.random.default_rng((seed, _VOCAB)).standard_normal((task.n_vocab, task.d_model))


def make_batch(task: RetrievalTask, embeddings: np.ndarray, rng: np.random.Generator, size: int):
    """Draw ``size`` examples of the task.

    Parameters
    ----------
    task : RetrievalTask
        Sizes.
    embeddings : (n_vocab, d_model) ndarray
        Token embeddings.
    rng : numpy.random.Generator
        Source of the tokens, targets and values.
    size : int
        Number of examples ``B``.

    Returns
    -------
    batch : Batch
    """
    # n_k distinct tokens per example: the first n_k of a random permutation of the vocabulary.
    tokens = np.argsort(rng.random((size, task.n_vocab)), axis=-1)[:, : task.n_k]  # (B, n_k)
    target = rng.integers(0, task.n_k, size=(size, task.n_q))  # (B, n_q)
    X_k = embeddings[tokens]  # (B, n_k) -> (B, n_k, d_model)
    X_q = np.take_along_axis(X_k, target[..., None], axis=-2)  # (B, n_q, d_model)
    V = rng.standard_normal((size, task.n_k, task.d_v))  # (B, n_k, d_v)
    return Batch(X_q=X_q, X_k=X_k, V=V, target=target)


def retrieval_loss(output: np.ndarray, batch: Batch) -> tuple[float | np.ndarray, np.ndarray]:
    """Mean squared distance of each query's output from the value it must fetch.

    Parameters
    ----------
    output : (..., B, n_q, d_v) ndarray
        Attention output; leading axes ``...`` (if any) are runs trained side by side.
    batch : Batch
        The batch it was computed on.

    Returns
    -------
    loss : float or (...) ndarray
        ``mean over (b, i) of |output[b, i] - V[b, target[b, i]]|²``, one per run. Fetching a
        wrong key's value costs about ``2 d_v`` (two independent standard-normal vectors),
        averaging all values about ``d_v``, the right one 0.
    grad_output : (..., B, n_q, d_v) ndarray
        Its gradient with respect to ``output``.
    """
    error = output - batch.wanted  # (..., B, n_q, d_v)
    n = error.shape[-3] * error.shape[-2]  # B · n_q terms in each mean
    loss = np.sum(error**2, axis=(-3, -2, -1)) / n  # (...)
    return (float(loss) if loss.ndim == 0 else loss), 2 * error / n


class SGD:
    """Plain gradient descent: ``W ← W - lr · g``."""

    def __init__(self, lr: float):
        self.lr = lr

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update every parameter in place."""
        for name, W in params.items():
            W -= self.lr * grads[name]


class Adam:
    """Adam (Kingma & Ba, 2015) with bias correction, its usual betas and epsilon."""

    def __init__(self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m: dict[str, np.ndarray] = {}  # running mean of the gradient
        self.v: dict[str, np.ndarray] = {}  # running mean of its square
        self.t = 0

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update every parameter in place."""
        self.t += 1
        for name, W in params.items():
            g = grads[name]
            if name not in self.m:  # first step: both running means start at 0
                self.m[name], self.v[name] = np.zeros_like(W), np.zeros_like(W)
            m, v = self.m[name], self.v[name]
            # In place: m = β1 m + (1 - β1) g, v = β2 v + (1 - β2) g², no new arrays kept.
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * np.square(g)
            # W -= lr · m̂ / (√v̂ + eps), with m̂ = m / (1 - β1^t), v̂ = v / (1 - β2^t).
            denominator = np.sqrt(v / (1 - self.beta2**self.t))
            denominator += self.eps
            W -= (self.lr / (1 - self.beta1**self.t)) * m / denominator


@dataclass(frozen=True, eq=False)
class TrainingRun:
    """What one training run did, step by step.

    Attributes
    ----------
    d_k : int
        Width of queries and keys.
    scaled : bool
        True for ``scale = 1/√d_k``, False for ``scale = 1``.
    optimiser : Optimiser
        Update rule.
    seed : int
        Seed of every random draw of the run.
    lr : float
        Learning rate.
    loss : (steps,) ndarray
        Training loss of each step's batch, before that step's update.
    w_q_grad_norm : (steps,) ndarray
        Frobenius norm of the gradient reaching ``W_q`` at each step.
    w_k_grad_norm : (steps,) ndarray
        Same for ``W_k``.
    initial_loss : float
        Loss on the held-out evaluation batch before training.
    final_loss : float
        Loss on the held-out evaluation batch after the last step.
    seconds : float
        Wall time of the run, or of all the runs trained side by side with it (not part of
        what a seed determines).
    """

    d_k: int
    scaled: bool
    optimiser: Optimiser
    seed: int
    lr: float
    loss: np.ndarray
    w_q_grad_norm: np.ndarray
    w_k_grad_norm: np.ndarray
    initial_loss: float
    final_loss: float
    seconds: float = field(default=0.0)

    @property
    def steps(self) -> int:
        """Number of updates made."""
        return len(self.loss)

    @property
    def label(self) -> str:
        """E.g. ``"d_k=256, scaled, sgd"``, for legends."""
        return f"d_k={self.d_k}, {'scaled' if self.scaled else 'unscaled'}, {self.optimiser.value}"


def _forward(params, batch: Batch, scale: float):
    """Project, attend; returns ``Q, K, V, output``, with the leading run axes ``...`` of
    ``params`` (none for a single run) before the batch axis."""
    d_model, d_k = params["W_q"].shape[-2:]
    runs = params["W_q"].shape[:-2]
    B, n_q, n_k = batch.X_q.shape[0], batch.X_q.shape[1], batch.X_k.shape[1]
    X_q = batch.X_q.reshape(-1, d_model)  # (B, n_q, d_model) -> (B·n_q, d_model)
    X_k = batch.X_k.reshape(-1, d_model)  # (B, n_k, d_model) -> (B·n_k, d_model)
    Q = X_q @ params["W_q"]  # (B·n_q, d_model) @ (..., d_model, d_k) -> (..., B·n_q, d_k)
    K = X_k @ params["W_k"]  # (B·n_k, d_model) @ (..., d_model, d_k) -> (..., B·n_k, d_k)
    Q = Q.reshape(*runs, B, n_q, d_k)  # (..., B·n_q, d_k) -> (..., B, n_q, d_k)
    K = K.reshape(*runs, B, n_k, d_k)  # (..., B·n_k, d_k) -> (..., B, n_k, d_k)
    V = np.broadcast_to(batch.V, (*runs, *batch.V.shape))  # (..., B, n_k, d_v), a view
    output, _ = ref.scaled_dot_product_attention(Q, K, V, scale=scale)  # (..., B, n_q, d_v)
    return Q, K, V, output


def loss_and_gradients(
    params: dict[str, np.ndarray], batch: Batch, scale: float, backward: Backward | None = None
) -> tuple[float | np.ndarray, dict[str, np.ndarray]]:
    """One forward and backward pass: the loss on ``batch`` and its gradients to ``W_q``, ``W_k``.

    ``backward`` gives ``dL/dQ`` and ``dL/dK``; through ``Q = X_q W_q`` and ``K = X_k W_k``::

        dW_q = X_qᵀ dQ   (d_model, B·n_q) @ (..., B·n_q, d_k) -> (..., d_model, d_k)
        dW_k = X_kᵀ dK   (d_model, B·n_k) @ (..., B·n_k, d_k) -> (..., d_model, d_k)

    Several runs with the same ``scale`` can share one pass: stack their weights along leading
    axes ``...``. Their ``Q``, ``K``, ``V`` then carry those axes before the batch axis, and
    ``backward`` is called once for all of them.

    Parameters
    ----------
    params : dict
        ``{"W_q": (..., d_model, d_k) ndarray, "W_k": (..., d_model, d_k) ndarray}``.
    batch : Batch
        The examples (the same for every run).
    scale : float
        Factor of the scores, passed to the forward pass and to ``backward`` as ``scale=``.
    backward : callable, optional
        As in :func:`train_retrieval`; defaults to the reference ``attention_backward``.

    Returns
    -------
    loss : float or (...) ndarray
        :func:`retrieval_loss` of the attention output, one per run.
    grads : dict
        ``{"W_q": (..., d_model, d_k) ndarray, "W_k": (..., d_model, d_k) ndarray}``.

    Raises
    ------
    ValueError
        If ``backward`` returns a gradient whose shape is not its input's.
    """
    backward = ref.attention_backward if backward is None else backward
    Q, K, V, output = _forward(params, batch, scale)
    loss, grad_output = retrieval_loss(output, batch)  # grad_output: (..., B, n_q, d_v)
    grad_Q, grad_K, _ = backward(Q, K, V, grad_output, mask=None, scale=scale)
    grad_Q = _check_gradient("grad_Q", grad_Q, Q.shape)  # (..., B, n_q, d_k)
    grad_K = _check_gradient("grad_K", grad_K, K.shape)  # (..., B, n_k, d_k)
    d_model, d_k = params["W_q"].shape[-2:]
    runs = params["W_q"].shape[:-2]
    X_q = batch.X_q.reshape(-1, d_model)  # (B, n_q, d_model) -> (B·n_q, d_model)
    X_k = batch.X_k.reshape(-1, d_model)  # (B, n_k, d_model) -> (B·n_k, d_model)
    grads = {
        "W_q": X_q.T @ grad_Q.reshape(*runs, -1, d_k),  # (d_model, B·n_q) @ (..., B·n_q, d_k)
        "W_k": X_k.T @ grad_K.reshape(*runs, -1, d_k),  # (d_model, B·n_k) @ (..., B·n_k, d_k)
    }
    return loss, grads


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _check_gradient(name: str, grad, expected_shape: tuple[int, ...]) -> np.ndarray:
    grad = np.asarray(grad)
    if grad.shape != expected_shape:
        raise ValueError(
            f"backward returned {name} of shape {grad.shape}; it must have the shape of its "
            f"input, {expected_shape}."
        )
    return grad


def train_retrieval(
    d_k: int,
    *,
    scaled: bool = True,
    optimiser: Optimiser | str = Optimiser.SGD,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    lr: float | None = None,
    backward: Backward | None = None,
    task: RetrievalTask | None = None,
) -> TrainingRun:
    """Train ``W_q`` and ``W_k`` on the retrieval task and record every step.

    ``W_q`` and ``W_k`` start with independent ``N(0, 1/d_model)`` entries, so queries and keys
    have entries of variance about 1 and raw scores ``q · k`` of variance about ``d_k`` -- the
    setting of the paper's footnote 4. Each step draws a fresh batch, runs the forward pass
    (the reference attention), gets ``dL/d output`` from :func:`retrieval_loss`, and the
    gradients to ``W_q``, ``W_k`` from ``backward`` and the chain rule
    (:func:`loss_and_gradients`), then updates both.

    Parameters
    ----------
    d_k : int
        Width of queries and keys.
    scaled : bool, optional
        ``scale = 1/√d_k`` if True (default), ``scale = 1`` if False.
    optimiser : Optimiser or {"sgd", "adam"}, optional
        Update rule (default SGD).
    steps : int, optional
        Number of updates (default ``DEFAULT_STEPS``).
    seed : int, optional
        Fixes the vocabulary, the initial weights, the batches and the evaluation batch.
    lr : float, optional
        Learning rate; defaults to ``DEFAULT_LR[optimiser]``.
    backward : callable, optional
        ``backward(Q, K, V, grad_output, mask=None, scale=scale) -> (grad_Q, grad_K,
        grad_V)``; defaults to :func:`attention_course.reference.attention_backward`. It is
        always called with ``scale=`` the scale of the forward pass.
    task : RetrievalTask, optional
        Sizes of the task; defaults to ``RetrievalTask()``.

    Returns
    -------
    run : TrainingRun

    Raises
    ------
    ValueError
        If ``d_k`` or ``steps`` is not a positive integer, the optimiser is unknown, or
        ``backward`` returns a gradient whose shape is not its input's.
    """
    optimiser = _optimiser(optimiser)
    lr = DEFAULT_LR[optimiser] if lr is None else float(lr)
    (run,) = _train_side_by_side(
        d_k, [(bool(scaled), optimiser, lr)], steps=steps, seed=seed, backward=backward, task=task
    )
    return run


def compare_scaling(
    d_ks: Sequence[int] = (16, 256, 1024),
    optimisers: Sequence[Optimiser | str] = (Optimiser.SGD, Optimiser.ADAM),
    *,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    backward: Backward | None = None,
    task: RetrievalTask | None = None,
) -> list[TrainingRun]:
    """Train every combination of ``d_k``, scaled / unscaled and optimiser (notebook 09).

    The runs of one ``d_k`` are trained side by side: their weights are stacked along a leading
    axis, and each step makes one forward and one ``backward`` call per scale for all of them.
    Each run is the one :func:`train_retrieval` gives with the same arguments, only cheaper
    than one at a time.

    Parameters
    ----------
    d_ks : sequence of int, optional
        Widths to compare.
    optimisers : sequence of Optimiser or str, optional
        Update rules to compare, each with its ``DEFAULT_LR``.
    steps, seed, backward, task
        As in :func:`train_retrieval`.

    Returns
    -------
    runs : list of TrainingRun
        In the order ``for optimiser: for d_k: for scaled in (True, False)``.
    """
    optimisers = [_optimiser(opt) for opt in optimisers]
    settings = [(scaled, opt, DEFAULT_LR[opt]) for scaled in (True, False) for opt in optimisers]
    by_d_k = {
        d_k: _train_side_by_side(
            d_k, settings, steps=steps, seed=seed, backward=backward, task=task
        )  # fmt: skip
        for d_k in d_ks
    }
    return [
        run
        for opt in optimisers
        for d_k in d_ks
        for scaled in (True, False)
        for run in by_d_k[d_k]
        if run.optimiser is opt and run.scaled is scaled
    ]


def _optimiser(value) -> Optimiser:
    try:
        return Optimiser(value)
    except ValueError:
        names = ", ".join(repr(o.value) for o in Optimiser)
        raise ValueError(f"optimiser must be one of {names}, got {value!r}.") from None


def _train_side_by_side(
    d_k, settings: Sequence[tuple[bool, Optimiser, float]], *, steps, seed, backward, task
) -> list[TrainingRun]:
    """Train one run per ``(scaled, optimiser, lr)`` of ``settings``, all with this ``d_k`` and
    seed: the same vocabulary, initial weights and batches, the weights of run ``r`` at
    ``W_q[r]``, ``W_k[r]`` of stacked ``(R, d_model, d_k)`` arrays. Consecutive runs with the
    same scale share each step's forward pass and ``backward`` call."""
    started = time.perf_counter()
    d_k = _positive_int(d_k, "d_k")
    steps = _positive_int(steps, "steps")
    task = RetrievalTask() if task is None else task
    backward = ref.attention_backward if backward is None else backward
    n_runs = len(settings)
    scales = [1.0 / np.sqrt(d_k) if scaled else 1.0 for scaled, _, _ in settings]
    groups, first = [], 0  # (scale, slice of the runs that share it)
    for r in range(1, n_runs + 1):
        if r == n_runs or scales[r] != scales[first]:
            groups.append((scales[first], slice(first, r)))
            first = r

    # The matrices are small (at most a few hundred rows of width d_k): BLAS threads cost more
    # than they save here, and on a busy 2-core machine they made a run many times slower.
    with threadpool_limits(limits=1, user_api="blas"):
        embeddings = _vocabulary(task, seed)  # (n_vocab, d_model)
        init = np.random.default_rng((seed, _INIT))
        std = 1.0 / np.sqrt(task.d_model)
        params = {  # every run starts from the same weights
            name: np.repeat(std * init.standard_normal((1, task.d_model, d_k)), n_runs, axis=0)
            for name in ("W_q", "W_k")
        }  # each (R, d_model, d_k)
        updates = [SGD(lr) if opt is Optimiser.SGD else Adam(lr) for _, opt, lr in settings]
        train_rng = np.random.default_rng((seed, _TRAIN))
        held_out = make_batch(
            task, embeddings, np.random.default_rng((seed, _EVAL)), task.eval_size
        )
        initial_loss = _held_out_loss(params, held_out, groups)  # (R,)

        losses, norms_q, norms_k = (np.zeros((n_runs, steps)) for _ in range(3))
        for step in range(steps):
            batch = make_batch(task, embeddings, train_rng, task.batch_size)
            for scale, part in groups:
                loss, grads = _group_loss_and_gradients(params, part, batch, scale, backward)
                losses[part, step] = loss
                norms_q[part, step] = _frobenius(grads["W_q"])
                norms_k[part, step] = _frobenius(grads["W_k"])
                for i, r in enumerate(range(part.start, part.stop)):
                    mine = {name: W[r] for name, W in params.items()}  # (d_model, d_k) views
                    updates[r].step(mine, {name: g[i] for name, g in grads.items()})

        final_loss = _held_out_loss(params, held_out, groups)  # (R,)
    seconds = time.perf_counter() - started
    return [
        TrainingRun(
            d_k=d_k,
            scaled=scaled,
            optimiser=opt,
            seed=seed,
            lr=lr,
            loss=losses[r],
            w_q_grad_norm=norms_q[r],
            w_k_grad_norm=norms_k[r],
            initial_loss=float(initial_loss[r]),
            final_loss=float(final_loss[r]),
            seconds=seconds,
        )
        for r, (scaled, opt, lr) in enumerate(settings)
    ]


def _runs(params, part: slice) -> dict[str, np.ndarray]:
    """The weights of the runs in ``part``: views (r, d_model, d_k), or (d_model, d_k) for a
    single run, so that a single run's ``backward`` sees the batch shapes ``(B, n, d_k)``."""
    index = part.start if part.stop - part.start == 1 else part
    return {name: W[index] for name, W in params.items()}


def _group_loss_and_gradients(params, part: slice, batch: Batch, scale: float, backward):
    """:func:`loss_and_gradients` for the runs in ``part``; gradients (r, d_model, d_k)."""
    loss, grads = loss_and_gradients(_runs(params, part), batch, scale, backward)
    shape = (part.stop - part.start, *params["W_q"].shape[1:])  # (r, d_model, d_k)
    return loss, {name: g.reshape(shape) for name, g in grads.items()}


def _frobenius(grads: np.ndarray) -> np.ndarray:
    """Frobenius norm of each run's gradient: (r, d_model, d_k) -> (r,)."""
    return np.sqrt(np.einsum("rij,rij->r", grads, grads))


def _held_out_loss(params, held_out: Batch, groups) -> np.ndarray:
    """Loss of every run on the held-out batch: (R,)."""
    loss = np.zeros(len(params["W_q"]))
    for scale, part in groups:
        loss[part] = retrieval_loss(_forward(_runs(params, part), held_out, scale)[3], held_out)[0]
    return loss
