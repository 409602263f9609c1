"""Integrated loudness (ITU-R BS.1770-4, LUFS) as pyloudnorm's meter gives it, fast enough for a whole corpus.

:func:`integrated_loudness` gives what ``pyloudnorm.Meter(sr).integrated_loudness`` gives (K-weighting, 400 ms
blocks with 75 % overlap, the -70 LUFS absolute and -10 LU relative gates, channel gains 1, 1, 1, 1.41, 1.41):
within 0.01 LU of it (``tests/test_loudness.py``). Two things make it cheap:

* the K-weighting (the meter's two biquads, a 1500 Hz +4 dB high shelf and a 38 Hz high-pass from the RBJ
  cookbook, as pyloudnorm designs them) runs as a block state-space filter in NumPy: each block of
  :data:`BLOCK` samples is one small matrix product (zero-state part) plus the response to the state it starts
  in, and the states themselves are carried from block to block by matrix products too. Exact up to float32
  rounding (within 4e-6 of ``scipy.signal.sosfilt`` in float64), as fast as ``sosfilt``, and it imports no
  ``scipy.signal`` (about 0.6 s in every process that loads it: ``tts-nb validate --jobs`` workers, issue 29);
* the 400 ms blocks are sums of 100 ms steps from one cumulative sum, not pyloudnorm's per-block Python loop.

Used by the validator (``loudness_lufs``), ``prepare --lufs`` and notebook 01.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

BLOCK_S = 0.400
STEP = 0.25  # 1 - overlap
ABSOLUTE_GATE = -70.0
CHANNEL_GAINS = (1.0, 1.0, 1.0, 1.41, 1.41)
#: (kind, gain dB, Q, corner Hz) of pyloudnorm's "K-weighting" filter class, in the order it applies them.
K_WEIGHTING = (("high_shelf", 4.0, 1 / math.sqrt(2), 1500.0), ("high_pass", 0.0, 0.5, 38.0))
BLOCK = 32  # samples per block of the state-space filter
GROUP = 64  # blocks whose start states come from one matrix product (64: measured best beside 32, 128)


def k_weighting_biquads(sr: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(b, a)]`` of the K-weighting biquads at ``sr`` Hz (RBJ cookbook designs, ``a[0] == 1``)."""
    out = []
    for kind, gain_db, q, fc in K_WEIGHTING:
        big_a, w0 = 10 ** (gain_db / 40), 2 * math.pi * fc / sr
        c, alpha = math.cos(w0), math.sin(w0) / (2 * q)
        if kind == "high_shelf":
            r = 2 * math.sqrt(big_a) * alpha
            b = [big_a * ((big_a + 1) + (big_a - 1) * c + r), -2 * big_a * ((big_a - 1) + (big_a + 1) * c),
                 big_a * ((big_a + 1) + (big_a - 1) * c - r)]
            a = [(big_a + 1) - (big_a - 1) * c + r, 2 * ((big_a - 1) - (big_a + 1) * c),
                 (big_a + 1) - (big_a - 1) * c - r]
        else:
            b, a = [(1 + c) / 2, -(1 + c), (1 + c) / 2], [1 + alpha, -2 * c, 1 - alpha]
        out.append((np.array(b) / a[0], np.array(a) / a[0]))
    return out


def _step(biquads, s: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One sample through the cascade (transposed direct form II): states ``[4, m]``, input ``[m]``."""
    s, v = s.copy(), x
    for k, (b, a) in enumerate(biquads):
        y = b[0] * v + s[2 * k]
        s[2 * k], s[2 * k + 1] = b[1] * v - a[1] * y + s[2 * k + 1], b[2] * v - a[2] * y
        v = y
    return s, v


@lru_cache(maxsize=8)
def _kernels(sr: int) -> tuple[np.ndarray, ...]:
    """The block filter's matrices at ``sr`` (built in float64 from the state-space form ``A, B, C, D``)."""
    biquads = k_weighting_biquads(sr)
    a_mat, c_row = _step(biquads, np.eye(4), np.zeros(4))
    b_col, d = (v[..., 0] for v in _step(biquads, np.zeros((4, 1)), np.ones(1)))
    powers = [np.eye(4)]
    for _ in range(max(BLOCK, GROUP)):
        powers.append(a_mat @ powers[-1])
    h = np.array([float(d)] + [c_row @ powers[k - 1] @ b_col for k in range(1, BLOCK)])
    zero_state = np.zeros((BLOCK, BLOCK))  # [input j, output k] = h[k - j]
    for j in range(BLOCK):
        zero_state[j, j:] = h[: BLOCK - j]
    from_state = np.array([c_row @ powers[k] for k in range(BLOCK)]).T  # [4, BLOCK]
    to_state = np.stack([powers[BLOCK - 1 - j] @ b_col for j in range(BLOCK)])  # [BLOCK, 4]
    m = powers[BLOCK]  # the state after one block of zero input
    m_pow = [np.eye(4)]
    for _ in range(GROUP):
        m_pow.append(m @ m_pow[-1])
    within = np.zeros((GROUP, 4, GROUP, 4))  # the state at block j of a group from the blocks i < j before it
    for j in range(GROUP):
        for i in range(j):
            within[i, :, j, :] = m_pow[j - 1 - i].T
    across = np.concatenate([m_pow[GROUP - 1 - i].T for i in range(GROUP)])  # [GROUP*4, 4]
    f32 = np.float32
    return (zero_state.astype(f32), from_state.astype(f32), to_state.astype(f32), np.stack(m_pow[:GROUP]),
            within.reshape(GROUP * 4, GROUP * 4), across, m_pow[GROUP])


@lru_cache(maxsize=1)
def _blas():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def k_weighted(x: np.ndarray, sr: int) -> np.ndarray:
    """``x`` (``[n]``, float) through the K-weighting filter from rest, float32: ``scipy.signal.sosfilt`` of
    :func:`k_weighting_biquads` without scipy (see the module docstring)."""
    return _k_weighted_blocks(x, sr).reshape(-1)[: len(x)]


def _k_weighted_blocks(x: np.ndarray, sr: int) -> np.ndarray:
    """:func:`k_weighted` as ``[blocks, BLOCK]``, zero-padded at the end. One BLAS thread: these products are
    small, and a second thread on a busy machine made them 5x slower (issue 29)."""
    with _blas().limit(limits=1, user_api="blas"):
        return _filter_blocks(x, int(sr))


def _filter_blocks(x: np.ndarray, sr: int) -> np.ndarray:
    zero_state, from_state, to_state, m_pow, within, across, m_group = _kernels(sr)
    n = len(x)
    groups = max(1, -(-n // (BLOCK * GROUP)))
    padded = np.zeros(groups * GROUP * BLOCK, np.float32)
    padded[:n] = x
    blocks = padded.reshape(groups * GROUP, BLOCK)
    pushed = (blocks @ to_state).astype(np.float64).reshape(groups, GROUP * 4)  # each block's effect on the state
    starts = np.empty((groups, 4))
    state = np.zeros(4)
    for g, step in enumerate(pushed @ across):  # state at each group's start: a short loop
        starts[g] = state
        state = m_group @ state + step
    states = np.einsum("jab,gb->gja", m_pow, starts).reshape(groups, GROUP * 4) + pushed @ within
    return blocks @ zero_state + states.reshape(-1, 4).astype(np.float32) @ from_state


def _energy_to(blocks: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Sum of squares of the flattened ``blocks`` before each sample index in ``bounds`` (float64)."""
    per_block = np.einsum("ij,ij->i", blocks, blocks, dtype=np.float64)
    running = np.concatenate(([0.0], np.cumsum(per_block)))
    q, r = np.divmod(bounds, blocks.shape[1])
    rows = blocks[np.minimum(q, len(blocks) - 1)].astype(np.float64)
    partial = np.einsum("ij,ij->i", rows, rows * (np.arange(blocks.shape[1]) < r[:, None]))
    return running[q] + partial


def integrated_loudness(y: np.ndarray, sr: int) -> float | None:
    """Integrated loudness in LUFS of ``y`` (``[n]`` or ``[n, channels]`` up to 5, full scale 1.0); None when
    shorter than one 400 ms block (pyloudnorm refuses those), -inf for digital silence."""
    x = np.asarray(y, dtype=np.float32)
    x = x[:, None] if x.ndim == 1 else x
    n, channels = x.shape
    if n < BLOCK_S * sr or channels > len(CHANNEL_GAINS):
        return None
    count = int(np.round((n / sr - BLOCK_S) / (BLOCK_S * STEP))) + 1
    j = np.arange(count + 4)
    bounds = np.minimum((BLOCK_S * STEP * j * sr).astype(np.int64), n)  # 100 ms steps, pyloudnorm's int() bounds
    z = np.zeros(count)
    for c in range(channels):
        steps = np.diff(_energy_to(_k_weighted_blocks(x[:, c], sr), bounds))  # per 100 ms step
        block = steps[:count] + steps[1 : count + 1] + steps[2 : count + 2] + steps[3 : count + 3]
        z += CHANNEL_GAINS[c] * block / (BLOCK_S * sr)
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10.0 * np.log10(z)
    above = block_lufs >= ABSOLUTE_GATE
    if not above.any():
        return float("-inf")
    relative = -0.691 + 10.0 * np.log10(z[above].mean()) - 10.0
    gated = (block_lufs > relative) & (block_lufs > ABSOLUTE_GATE)
    return float(-0.691 + 10.0 * np.log10(z[gated].mean())) if gated.any() else float("-inf")
