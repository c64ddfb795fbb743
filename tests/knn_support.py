"""Float comparisons of distances, scores and neighbour lists that hold on every x86-64 CPU.

faiss chooses its L1 kernel when it starts (scalar, AVX2 with 8 lanes, AVX-512 with 16 lanes) and
the native kernel sums in an order of its own, so the float32 distance of one pair of rows can
differ in its last bits from one implementation or CPU to another. Compare values within the
tolerances below, and neighbour lists tie-aware: rows whose distances are equal within the
tolerance may come in either order, and the last place of a top-k list may go to either of them.
"""

from __future__ import annotations

import numpy as np

# Relative tolerance of a float32 L1 distance (a sum of D non-negative float32 terms) against the
# exact value, whatever order the terms are summed in. The worst-case rounding bound, (D-1)·2^-24
# of the sum (1.2e-4 at D = 2048), is never approached: the rounding errors of the partial sums
# are independent and grow like sqrt(D)·2^-24 (2.7e-6 at D = 2048, the largest D in the tests).
# Measured against float64 for faiss's scalar, AVX2 and AVX-512 kernels and the native kernel,
# D = 8 … 2048: at most 7.4e-7. 1e-5 leaves ~4x over the sqrt(D) estimate and >10x over that.
L1_RTOL = 1e-5

# Scores are 1 - L1 / (2·sqrt(D)), and the L1 distance of two unit rows is at most 2·sqrt(D):
# a relative error r of the distance moves the score by at most r.
SCORE_ATOL = L1_RTOL


def exact_l1(queries, pool, block=8) -> np.ndarray:
    """Every L1 distance (``len(queries) × len(pool)``) in float64 from the float32 rows: the
    reference the kernels' float32 sums are held to."""
    q = np.asarray(queries, dtype=np.float32)
    x = np.asarray(pool, dtype=np.float32)
    out = np.empty((len(q), len(x)))
    for s in range(0, len(q), block):  # blocks of queries: a 2048-d pool stays small in memory
        out[s:s + block] = np.abs(q[s:s + block, None, :].astype(np.float64) - x[None]).sum(-1)
    return out


def assert_same_ranking(got_ids, got_values, want_ids, want_values, tol, what="ranking"):
    """Two ranked lists (best first, the same length) agree up to ties within ``tol``.

    Place by place the values agree within ``tol`` (a perturbation of at most ``tol`` moves every
    place of a sorted list by at most that much). Where the ids differ, the row moved only across
    a tie: its value in the other list lies within ``tol`` of its own, and within ``2·tol`` of the
    value at its place there; a row missing from the other list tied with the other list's last
    place (it fell off the end). Works for ascending distances and descending scores alike."""
    got_ids, want_ids = list(got_ids), list(want_ids)
    got_values, want_values = np.asarray(got_values, float), np.asarray(want_values, float)
    assert len(got_ids) == len(want_ids) == len(got_values) == len(want_values), (what, got_ids, want_ids)
    assert len(set(got_ids)) == len(got_ids) and len(set(want_ids)) == len(want_ids), (what, "repeated ids")
    np.testing.assert_allclose(got_values, want_values, rtol=0, atol=tol, err_msg=what)
    for a_ids, a_vals, b_ids, b_vals in ((got_ids, got_values, want_ids, want_values),
                                         (want_ids, want_values, got_ids, got_values)):
        b_place = {r: m for m, r in enumerate(b_ids)}
        for j, (r, v) in enumerate(zip(a_ids, a_vals)):
            if b_ids[j] == r:
                continue
            m = b_place.get(r)
            if m is None:
                assert abs(v - b_vals[-1]) <= 2 * tol, f"{what}: {r!r} at place {j} ({v!r}) is not tied with the " \
                                                       f"last place of the other list ({b_vals[-1]!r})"
            else:
                assert abs(b_vals[m] - v) <= tol and abs(b_vals[j] - b_vals[m]) <= 2 * tol, \
                    f"{what}: {r!r} moved from place {m} to {j} across values {b_vals[m]!r}, {b_vals[j]!r} (no tie)"


def assert_knn_matches(got, exact, rtol=L1_RTOL):
    """A k-nearest-neighbour answer ``got = (distances, indices)`` (``len(queries) × k``, nearest
    first, ``inf``/``-1`` where the pool has fewer than k rows) is the exact one up to ties.

    ``exact`` holds every exact distance (:func:`exact_l1`). Each reported distance is the exact
    distance of its row within ``rtol``; the rows are the exact k nearest (ordered by distance,
    then by index) except that rows at equal distances within the tolerance may swap, also across
    the k-th place; and equal reported distances come by increasing index."""
    d, i = got
    n, k = exact.shape[1], d.shape[1]
    assert d.shape == i.shape == (exact.shape[0], k)
    valid = min(k, n)
    assert (i[:, valid:] == -1).all() and np.isinf(d[:, valid:]).all()
    for row, (dq, iq) in enumerate(zip(d[:, :valid], i[:, :valid])):
        assert ((iq >= 0) & (iq < n)).all(), (row, iq)
        np.testing.assert_allclose(dq, exact[row, iq], rtol=rtol, atol=0, err_msg=f"query {row}: distance of its row")
        assert (np.diff(dq) >= 0).all(), (row, dq)
        same = np.diff(dq) == 0
        assert (np.diff(iq)[same] > 0).all(), (row, "equal distances must come by increasing index", iq)
        order = np.argsort(exact[row], kind="stable")[:valid]
        want = exact[row, order]
        tol = rtol * float(max(want[-1], dq[-1]))
        assert_same_ranking(iq.tolist(), dq, order.tolist(), want, tol, what=f"query {row}")
