"""Figures of notebook 10: attention at inference (the KV cache, grouped-query attention)."""

from __future__ import annotations

import numpy as np

from .style import OKABE_ITO, _axes, _log2_xaxis, _plain_log_yaxis

_PALETTE = (OKABE_ITO[5], OKABE_ITO[4], OKABE_ITO[2], OKABE_ITO[0])
_MARKERS = ("o", "s", "^", "D")


def _check_series(lengths, series: dict, what: str) -> np.ndarray:
    lengths = np.asarray(lengths)
    if not series:
        raise ValueError(f"{what} is empty: give at least one series to draw.")
    for name, values in series.items():
        if len(values) != len(lengths):
            raise ValueError(
                f"{what}[{name!r}] has {len(values)} values for {len(lengths)} sequence lengths."
            )
    return lengths


def decode_time_curves(lengths, seconds: dict, *, ax=None):
    """Time to generate one token against the number of tokens already generated, log-log.

    On log-log axes a cost that grows like ``t`` is a line of slope 1 and one that grows like
    ``t²`` a line of slope 2; a flat stretch is a fixed cost per call.

    Parameters
    ----------
    lengths : (n_lengths,) array_like of int
        Number of earlier tokens ``t`` when the token was generated.
    seconds : dict of str to (n_lengths,) array_like
        For each way of generating (e.g. "with the KV cache", "recomputing everything"), the
        time of one step at each length, in seconds.
    ax : matplotlib Axes, optional
        Where to draw; a new figure if omitted.

    Returns
    -------
    ax : matplotlib Axes

    Raises
    ------
    ValueError
        If ``seconds`` is empty or a series does not have one value per length.
    """
    lengths = _check_series(lengths, seconds, "seconds")
    ax = _axes(ax, figsize=(6, 4.2))
    for i, (name, values) in enumerate(seconds.items()):
        ax.plot(lengths, np.asarray(values, dtype=float) * 1e3, color=_PALETTE[i % 4],
                marker=_MARKERS[i % 4], label=name)  # fmt: skip
    _log2_xaxis(ax, lengths)
    _plain_log_yaxis(ax)
    ax.set_xlabel("tokens already generated t")
    ax.set_ylabel("time for the next token (ms)")
    ax.set_title("Time per generated token")
    ax.grid(True, which="major", color="0.9")
    ax.legend(loc="upper left")
    return ax


def cache_memory_curves(lengths, bytes_per_token: dict, *, window: dict | None = None, ax=None):
    """Memory of the KV cache against sequence length, one line per attention variant.

    Parameters
    ----------
    lengths : (n_lengths,) array_like of int
        Sequence lengths (tokens in the cache without a window).
    bytes_per_token : dict of str to float
        For each variant (e.g. "MHA, 32 kv heads"), the cache's bytes per token, all layers.
    window : dict of str to int, optional
        For variants that keep only a sliding window of tokens, that window: their cache stops
        growing at ``window`` tokens. Keys must be keys of ``bytes_per_token``.
    ax : matplotlib Axes, optional
        Where to draw; a new figure if omitted.

    Returns
    -------
    ax : matplotlib Axes

    Raises
    ------
    ValueError
        If ``bytes_per_token`` is empty or ``window`` names a variant it does not have.
    """
    lengths = np.asarray(lengths, dtype=float)
    window = window or {}
    if not bytes_per_token:
        raise ValueError("bytes_per_token is empty: give at least one variant to draw.")
    unknown = set(window) - set(bytes_per_token)
    if unknown:
        raise ValueError(f"window names variants without bytes_per_token: {sorted(unknown)}.")
    ax = _axes(ax, figsize=(6, 4.2))
    for i, (name, per_token) in enumerate(bytes_per_token.items()):
        tokens = np.minimum(lengths, window[name]) if name in window else lengths
        ax.plot(lengths, tokens * per_token / 2**30, color=_PALETTE[i % 4], label=name,
                linestyle="--" if name in window else "-")  # fmt: skip
    ax.set_xlabel("sequence length (tokens)")
    ax.set_ylabel("KV cache (GiB)")
    ax.set_title("Memory of the KV cache, one sequence")
    ax.set_xlim(0, lengths.max())
    ax.set_ylim(0, None)
    ax.grid(True, color="0.9")
    ax.legend(loc="upper left")
    return ax
