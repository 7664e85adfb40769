"""A fixed latency histogram: rollup rows keep counts per bucket, so that medians and p95s of any range,
key or model are estimated from SQL sums (no raw events needed). Buckets grow roughly ×1.5, so an estimate
is within a bucket's width of the true value (interpolated linearly inside the bucket).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

# Upper edges (ms) of the buckets; the last bucket is everything from 60 s up.
EDGES_MS: tuple[float, ...] = (
    5,
    10,
    20,
    35,
    50,
    75,
    100,
    150,
    200,
    300,
    500,
    750,
    1000,
    1500,
    2000,
    3000,
    5000,
    7500,
    10_000,
    15_000,
    20_000,
    30_000,
    60_000,
)
N_BUCKETS = len(EDGES_MS) + 1
LATENCY_FIELDS: tuple[str, ...] = tuple(f"lat_{i:02d}" for i in range(N_BUCKETS))


def bucket_of(latency_ms: float) -> int:
    """Index of the bucket holding this latency: [edge[i-1], edge[i])."""
    return bisect_right(EDGES_MS, max(0.0, float(latency_ms)))


def quantile(counts: Sequence[int | None], q: float) -> float | None:
    """Estimated q-quantile (0..1) in ms from bucket counts; None when there is nothing."""
    counts = [int(c or 0) for c in counts]
    total = sum(counts)
    if total <= 0:
        return None
    target = q * total
    seen = 0
    for i, c in enumerate(counts):
        if c and seen + c >= target:
            lo = EDGES_MS[i - 1] if i > 0 else 0.0
            if i >= len(EDGES_MS):  # open-ended last bucket: report its lower edge
                return float(lo)
            hi = EDGES_MS[i]
            return float(lo + (hi - lo) * max(0.0, min(1.0, (target - seen) / c)))
        seen += c
    return float(EDGES_MS[-1])


def sql_bucket_case(column: str) -> list[str]:
    """SQL expressions (one per bucket) counting 1 when ``column`` falls in it (for benchmarks/backfills)."""
    exprs = []
    for i in range(N_BUCKETS):
        lo = EDGES_MS[i - 1] if i > 0 else None
        hi = EDGES_MS[i] if i < len(EDGES_MS) else None
        cond = " AND ".join(
            c
            for c in (
                f"{column} >= {lo}" if lo is not None else "",
                f"{column} < {hi}" if hi is not None else "",
            )
            if c
        )
        exprs.append(f"CASE WHEN {cond} THEN 1 ELSE 0 END")
    return exprs
