"""Integrated loudness (ITU-R BS.1770-4, LUFS) as pyloudnorm's meter gives it, fast enough for a whole corpus.

:func:`integrated_loudness` gives what ``pyloudnorm.Meter(sr).integrated_loudness`` gives (K-weighting, 400 ms
blocks with 75 % overlap, the -70 LUFS absolute and -10 LU relative gates, channel gains 1, 1, 1, 1.41, 1.41):
within 0.01 LU of it (``tests/test_loudness.py``). Two things make it cheap:

* the K-weighting (the meter's two biquads, a 1500 Hz +4 dB high shelf and a 38 Hz high-pass from the RBJ
  cookbook, as pyloudnorm designs them) runs as a block state-space filter in NumPy: each block of
  :data:`BLOCK` samples is one small matrix product (zero-state part) plus the response to the state it starts
  in, and the states themselves are carried from block to block, group to group and chunk to chunk by matrix
  products too. It runs one cache-sized chunk at a time and keeps only each block's energy: the filtered
  signal of a whole take is never built (a pass over memory each time, issue 29). Exact up to float32
  rounding (within 4e-6 of ``scipy.signal.sosfilt`` in float64), about twice as fast as float32 ``sosfilt``
  (issue 29's benchmark), and it imports no ``scipy.signal`` (about 0.6 s in every process that loads it:
  ``tts-nb validate --jobs`` workers, issue 29);
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
GROUP = 16  # blocks whose start states come from one matrix product
CHUNK = 128  # groups filtered at a time: 64k samples, so every temporary stays in the L2 cache (16 and 128:
# measured best on a 60 s take beside GROUP 8, 32, 64 and CHUNK 16-256, issue 29)


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
    f32 = np.float32
    stacked = np.concatenate([zero_state, from_state]).astype(f32)  # [a block | its start state] @ stacked
    group = _carry(powers[BLOCK], GROUP)  # powers[BLOCK]: the state map of one block of zero input
    return stacked, to_state.astype(f32), group, _carry(group[3], CHUNK)


def _carry(m: np.ndarray, count: int) -> tuple[np.ndarray, ...]:
    """For ``count`` steps of the state map ``m``, as products on row vectors: ``(start [4, count*4]: the
    state at each step from the state before the first; within [count*4, count*4]: the state at each step
    from the pushes of the steps before it; across [count*4, 4]: the state after the last step from every
    push; m^count)``."""
    powers = [np.eye(4)]
    for _ in range(count):
        powers.append(m @ powers[-1])
    within = np.zeros((count, 4, count, 4))  # [push at step i, state at step j > i]
    for j in range(count):
        for i in range(j):
            within[i, :, j, :] = powers[j - 1 - i].T
    return (np.concatenate([p.T for p in powers[:count]], axis=1), within.reshape(count * 4, count * 4),
            np.concatenate([powers[count - 1 - i].T for i in range(count)]), powers[count])


@lru_cache(maxsize=1)
def _blas():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def warm_up(sr: int) -> None:
    """Build the filter's matrices at ``sr`` and the BLAS controller now (a parent before it forks workers)."""
    _kernels(int(sr))
    _blas()


def k_weighted(x: np.ndarray, sr: int) -> np.ndarray:
    """``x`` (``[n]``, float) through the K-weighting filter from rest, float32: ``scipy.signal.sosfilt`` of
    :func:`k_weighting_biquads` without scipy (see the module docstring)."""
    out = np.empty((-(-len(x) // BLOCK), BLOCK), np.float32)
    with _blas().limit(limits=1, user_api="blas"):
        for row, y in _filtered_chunks(x, int(sr)):
            out[row : row + len(y)] = y[: len(out) - row]
    return out.reshape(-1)[: len(x)]


def _filtered_chunks(x: np.ndarray, sr: int):
    """``(first block, filtered blocks [rows, BLOCK])`` of ``x`` through the K-weighting, :data:`CHUNK` groups
    at a time so that every temporary stays in the CPU cache (one pass over the samples, issue 29); the last
    chunk is zero-padded to whole groups. The caller limits BLAS to one thread."""
    stacked, to_state, (g_start, g_within, g_across, m_group), (c_start, c_within, _, _) = _kernels(sr)
    x = np.ascontiguousarray(x, np.float32)
    n, span = len(x), CHUNK * GROUP * BLOCK
    state = np.zeros(4)
    for start in range(0, max(n, 1), span):
        piece = x[start : start + span]
        if len(piece) % (GROUP * BLOCK):
            piece = np.concatenate([piece, np.zeros(-len(piece) % (GROUP * BLOCK), np.float32)])
        blocks = piece.reshape(-1, BLOCK)
        groups = len(blocks) // GROUP
        if not groups:
            return
        pushed = (blocks @ to_state).astype(np.float64).reshape(groups, GROUP * 4)  # each block's push
        steps = pushed @ g_across  # each group's push
        starts = (state @ c_start[:, : groups * 4] + steps.reshape(-1) @ c_within[: groups * 4, : groups * 4])
        starts = starts.reshape(groups, 4)  # the state at each group's start
        state = m_group @ starts[-1] + steps[-1]
        states = starts @ g_start + pushed @ g_within  # at each block's start
        yield start // BLOCK, np.concatenate([blocks, states.reshape(-1, 4).astype(np.float32)], axis=1) @ stacked


def _energy_to(x: np.ndarray, sr: int, bounds: np.ndarray) -> np.ndarray:
    """Sum of squares of :func:`k_weighted` ``(x, sr)`` before each sample index in ``bounds`` (float64), chunk
    by chunk: the filtered signal is never materialised."""
    q, r = np.divmod(bounds, BLOCK)
    per_block = np.zeros(-(-len(x) // (GROUP * BLOCK)) * GROUP + 1)
    partial = np.zeros(len(bounds))
    cut = np.flatnonzero(r)  # bounds inside a block: the samples of that block before them
    with _blas().limit(limits=1, user_api="blas"):
        for row, y in _filtered_chunks(x, sr):
            per_block[row + 1 : row + 1 + len(y)] = np.einsum("ij,ij->i", y, y)  # float32: 4x faster
            mine = cut[(q[cut] >= row) & (q[cut] < row + len(y))]
            if len(mine):
                rows = y[q[mine] - row].astype(np.float64)
                partial[mine] = np.einsum("ij,ij->i", rows, rows * (np.arange(BLOCK) < r[mine, None]))
    return np.cumsum(per_block)[q] + partial


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
        steps = np.diff(_energy_to(x[:, c], int(sr), bounds))  # per 100 ms step
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
