"""Which points of a map lie in a polygon (a lasso or a box drawn on it).

The rule: a point is selected when it lies inside the polygon or on its boundary (edges and
vertices count as inside), inside meaning the even-odd rule (a ray from the point crosses the
boundary an odd number of times), so a self-crossing lasso selects what a drawing program fills.
"On the boundary" allows a distance of :data:`EDGE_TOLERANCE` times the polygon's larger side, so a
point exactly on an edge is selected whatever the rounding of the edge's arithmetic.

The polygon is closed implicitly (the last vertex joins the first). Cost: the points are sorted by
y once, and each edge looks only at the points whose y lies within its own span, so the work is
about the number of points times the number of edges that a horizontal line crosses.
"""

from __future__ import annotations

import numpy as np

from ..errors import CatalogError

MAX_VERTICES = 10_000
EDGE_TOLERANCE = 1e-9


def check_polygon(polygon) -> np.ndarray:
    """The polygon as a float64 ``(v, 2)`` array; a :class:`CatalogError` (field ``polygon``) when it
    is not at least 3 finite ``(x, y)`` vertices, or has more than :data:`MAX_VERTICES`."""
    if isinstance(polygon, dict) and set(polygon) >= {"x", "y"}:
        polygon = list(zip(polygon["x"], polygon["y"], strict=False)) \
            if len(polygon["x"]) == len(polygon["y"]) else None
    try:
        p = np.asarray(polygon, dtype=np.float64)
    except (TypeError, ValueError):
        p = None
    if p is None or p.ndim != 2 or p.shape[1] != 2:
        raise CatalogError("a `polygon` is a list of (x, y) vertices", field="polygon")
    if len(p) < 3:
        raise CatalogError(f"a `polygon` needs at least 3 vertices (got {len(p)})", field="polygon")
    if len(p) > MAX_VERTICES:
        raise CatalogError(f"a `polygon` may have at most {MAX_VERTICES:,} vertices (got {len(p):,}); "
                           "simplify it", field="polygon")
    if not np.isfinite(p).all():
        raise CatalogError("the `polygon`'s vertices must be finite numbers", field="polygon")
    return p


def box_polygon(x0, y0, x1, y1) -> np.ndarray:
    """The rectangle between two corners as a polygon."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def points_in_polygon(xy, polygon) -> np.ndarray:
    """A boolean mask over the ``(n, 2)`` points ``xy``: inside ``polygon`` or on its boundary."""
    mask = np.zeros(len(xy), dtype=bool)
    mask[PointIndex(xy).select(polygon)] = True
    return mask


class PointIndex:
    """Points sorted by y once (built per map and kept), so that each selection only reads the points
    in the polygon's band of y and each edge those in its own band."""

    def __init__(self, xy):
        xy = np.asarray(xy)
        self.order = np.argsort(xy[:, 1], kind="stable") if len(xy) else np.zeros(0, np.int64)
        self.y = xy[self.order, 1].astype(np.float64)
        self.x = xy[self.order, 0].astype(np.float64)

    def select(self, polygon) -> np.ndarray:
        """Positions (ascending) of the points inside ``polygon`` or on its boundary."""
        p = check_polygon(polygon)
        (xmin, ymin), (xmax, ymax) = p.min(axis=0), p.max(axis=0)
        tol = EDGE_TOLERANCE * max(xmax - xmin, ymax - ymin, np.finfo(np.float64).tiny)
        a, b = np.searchsorted(self.y, ymin - tol, "left"), np.searchsorted(self.y, ymax + tol, "right")
        keep = np.flatnonzero((self.x[a:b] >= xmin - tol) & (self.x[a:b] <= xmax + tol)) + a
        if len(keep) == 0:
            return np.zeros(0, dtype=np.int64)
        sx, sy = self.x[keep], self.y[keep]  # still sorted by y
        hit = _inside_or_on(p, sx, sy, tol)
        mask = np.zeros(len(self.order), dtype=bool)
        mask[self.order[keep[hit]]] = True
        return np.flatnonzero(mask)


def _inside_or_on(p: np.ndarray, sx: np.ndarray, sy: np.ndarray, tol: float) -> np.ndarray:
    inside = np.zeros(len(sx), dtype=bool)
    on = np.zeros(len(sx), dtype=bool)
    for (x1, y1), (x2, y2) in zip(p, np.roll(p, -1, axis=0), strict=True):
        lo, hi = min(y1, y2), max(y1, y2)
        a, b = np.searchsorted(sy, lo - tol, "left"), np.searchsorted(sy, hi + tol, "right")
        if a == b:
            continue
        px, py = sx[a:b], sy[a:b]
        dx, dy = x2 - x1, y2 - y1
        if dy != 0:  # even-odd crossing of a ray towards +x, half-open in y so a vertex counts once
            crosses = (py >= lo) & (py < hi)
            xint = x1 + (py - y1) * (dx / dy)
            inside[a:b] ^= crosses & (px < xint)
        length = np.hypot(dx, dy)
        if length == 0:
            on[a:b] |= (np.abs(px - x1) <= tol) & (np.abs(py - y1) <= tol)
            continue
        cross = dx * (py - y1) - dy * (px - x1)
        along = ((px - x1) * dx + (py - y1) * dy) / length
        on[a:b] |= (np.abs(cross) <= tol * length) & (along >= -tol) & (along <= length + tol)
    return inside | on
