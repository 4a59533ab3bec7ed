"""Exact quantiles: numpy's default ``np.quantile(values, q)`` (method "linear"), per dimension, in float64.

* Episodes: ``segment_quantiles`` sorts each contiguous row segment once (one ``lexsort`` by segment, then
  value, for all segments and dimensions together) and reads the two ranks either side of (n-1)q.
* Pixels: ``histogram_quantiles`` reads those ranks off the cumulative (C, 256) uint8 histogram (values
  level/255, as ``np.quantile(frames / 255, q)``); the dataset merges the histograms by summing them.
* Dataset rows: ``DatasetQuantiles`` drives an exact multi-pass *radix select* over partitions.  Every
  float64 maps to a uint64 key whose integer order is the float order.  Pass 1 counts the top 16 bits of the
  keys per dimension in every partition (counts merge by addition; no global range needed); the merged
  counts give, for each target rank, the 16-bit bin holding it and its rank inside that bin.  Each next pass
  counts the next 16 bits, only inside the selected bins, or, for bins small enough (at most ``budget``
  values per pass in all), collects their values, merged by concatenation.  After 4 passes all 64 bits are
  fixed, so there are at most 4 passes.  Partition results and the driver's state are bounded by
  dims x targets x 65536 counts and ``budget`` collected values, whatever the dataset's size.

Ranks, interpolation weights and the interpolation follow numpy's code (``_get_indexes``, ``_lerp``)
operation by operation, so results equal ``np.quantile`` on the same float64 values, bit for bit.

Values: ints and bools are converted to float64 first (as ``np.quantile`` on ``x.astype(float64)``; ints
beyond 2**53 round).  NaN/inf policy, numpy's: a dimension (of an episode or of the dataset) holding any
NaN gets NaN for every quantile; infinities are ordinary sorted values and interpolate as numpy's ``_lerp``
does (e.g. q between 1 and inf gives inf; q between two infinities, or a single inf value, gives NaN).
-0.0 and 0.0 are equal values; which of the two a result carries may differ from numpy's.  An empty input
(dataset, channel without pixels) gives NaN where ``np.quantile`` would raise.

In a conversion, the stats tasks do the first pass beside the moments (``first_request``), or, when the
dataset's values of a feature are small enough to hold at once, hand the values themselves over
(``values_quantiles``: no pass at all); a dataset of usual size then needs one pass more (collecting the selected
bins), pathological ones up to three.

Wiring: one ``DatasetQuantiles`` per numeric feature; a pass maps ``partition_pass(request, values)`` over the
partitions (values as ``numeric.column_values`` gives them) and tree-reduces with ``merge``; ``records.quantile_stats``
shapes the results like records.py's stats.  ``segment_quantiles`` needs whole episodes in a partition.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
DEFAULT_BUDGET = 1_000_000  # values collected per pass, all dimensions together
DIGIT = 16  # bits fixed per pass
_SIGN = np.uint64(1 << 63)
_NAN_KEY = np.uint64(2**64 - 1)  # every NaN sorts last, alone in the top bin (0xFFFF) of the first pass
_LEVELS = np.arange(256, dtype=np.float64) / 255.0


def parse_quantiles(spec: str | Sequence[float | str]) -> tuple[float, ...]:
    """Quantiles from "0.02,0.98" or a sequence: whole percents 0.01..0.99, deduplicated and sorted; the item
    "default" stands for lerobot's ``DEFAULT_QUANTILES`` ("default,0.02" adds q02 to them)."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    percents = set()
    for item in items:
        if isinstance(item, str) and item.strip() == "default":
            percents.update(round(q * 100) for q in DEFAULT_QUANTILES)
            continue
        try:
            q = float(item.strip() if isinstance(item, str) else item)
        except (TypeError, ValueError):
            q = float("nan")
        percent = round(q * 100) if np.isfinite(q) else 0
        if not (1 <= percent <= 99 and abs(q * 100 - percent) < 1e-9):
            raise ValueError(f"invalid quantile {item!r}: quantiles are whole percents between 0.01 and 0.99, "
                             f"comma-separated, e.g. 0.01,0.1,0.5,0.9,0.99 (\"default\" adds lerobot's)")
        percents.add(percent)
    if not percents:
        raise ValueError("no quantiles given: expected whole percents between 0.01 and 0.99, e.g. default,0.02")
    return tuple(p / 100 for p in sorted(percents))


def quantile_key(q: float) -> str:
    """lerobot's stat name: 0.01 -> "q01", 0.5 -> "q50"."""
    return f"q{int(round(q * 100)):02d}"


def _positions(n: np.ndarray, qs: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ranks below/above (n-1)q and the weight, as numpy's linear method computes them: shapes (..., Q)."""
    n = np.asarray(n, dtype=np.int64)[..., None]
    virtual = (n - 1) * np.asarray(qs, dtype=np.float64)
    below = np.floor(virtual)
    top = virtual >= n - 1  # numpy takes index -1 (the last value) there, and computes the weight from -1
    gamma = virtual - np.where(top, -1.0, below)
    low = np.where(top, n - 1, below).astype(np.int64)
    high = np.where(top, n - 1, below + 1).astype(np.int64)
    return low, high, gamma


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """numpy's ``_lerp``, infinities included."""
    with np.errstate(invalid="ignore"):
        diff = b - a
        return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)


def _float64(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return np.ascontiguousarray((x[:, None] if x.ndim == 1 else x), dtype=np.float64)


def segment_quantiles(x: np.ndarray, starts: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """(segments, Q, D) quantiles of the non-empty row segments ``x[starts[i]:starts[i+1]]`` of (rows, D) x.

    Each segment's dimensions are sorted in place (a plain sort per segment: 20-30x faster than one ``lexsort``
    by segment and value).  Equal values are indistinguishable except -0.0 and 0.0: where a picked value is a
    zero, that segment and dimension is sorted again stably, so that the sign is the one ``np.quantile``'s
    stable order gives."""
    x = _float64(x)
    starts = np.asarray(starts, dtype=np.int64)
    if len(starts) == 0:
        return np.empty((0, len(qs), x.shape[1]))
    lengths = np.diff(np.append(starts, x.shape[0]))
    ordered = np.array(x.T)  # (D, rows): each segment of each dimension sorted in place, contiguously
    for start, length in zip(starts.tolist(), lengths.tolist()):
        ordered[:, start:start + length].sort(axis=1)
    low, high, gamma = _positions(lengths, qs)  # (segments, Q)
    below, above = ordered[:, starts[:, None] + low], ordered[:, starts[:, None] + high]  # (D, segments, Q)
    for dim, segment in zip(*np.nonzero(((below == 0) | (above == 0)).any(axis=2))):
        start = starts[segment]
        column = np.sort(x[start:start + lengths[segment], dim], kind="stable")
        below[dim, segment], above[dim, segment] = column[low[segment]], column[high[segment]]
    out = _lerp(below, above, gamma).transpose(1, 2, 0)
    has_nan = np.logical_or.reduceat(np.isnan(x), starts, axis=0)  # (segments, D)
    out[np.broadcast_to(has_nan[:, None, :], out.shape)] = np.nan
    return np.ascontiguousarray(out)


def histogram_quantiles(hist: np.ndarray, qs: Sequence[float], levels: np.ndarray | None = None) -> np.ndarray:
    """(Q, C) quantiles in [0, 1] of the pixels counted by a (C, 256) integer histogram; with ``levels`` (the
    ascending value of each bin: a depth map's 4096 codes), in those values."""
    hist = np.asarray(hist, dtype=np.int64)
    levels = _LEVELS if levels is None else levels
    n = hist.sum(axis=1)
    low, high, gamma = _positions(n, qs)  # (C, Q)
    cumulative = np.cumsum(hist, axis=1)
    level = lambda rank: (cumulative[:, :, None] <= rank[:, None, :]).sum(axis=1).clip(max=len(levels) - 1)
    out = _lerp(levels[level(low)], levels[level(high)], gamma)
    out[n == 0] = np.nan
    return out.T


def float_keys(x: np.ndarray) -> np.ndarray:
    """uint64 keys of float64 values, in the values' order (-inf < ... < -0.0 < 0.0 < ... < inf < NaN)."""
    bits = np.ascontiguousarray(x, dtype=np.float64).view(np.int64)
    keys = (bits ^ (bits >> 63 | np.int64(-(2**63)))).view(np.uint64)  # negatives: all bits flipped
    np.putmask(keys, np.isnan(x), _NAN_KEY)
    return keys


def key_values(keys: np.ndarray) -> np.ndarray:
    """The float64 values of ``float_keys``."""
    keys = np.asarray(keys, dtype=np.uint64)
    return np.where(keys & _SIGN, keys & ~_SIGN, ~keys).view(np.float64)


@dataclass(frozen=True)
class PassRequest:
    """What every partition computes in one pass: per entry, the rows of dimension ``dims[e]`` whose key
    starts with ``prefixes[e]`` (its top DIGIT * ``levels[e]`` bits) are either collected or counted by
    their next DIGIT bits."""

    dims: np.ndarray  # (E,) int64
    levels: np.ndarray  # (E,) int64, 0..3
    prefixes: np.ndarray  # (E,) uint64
    collect: np.ndarray  # (E,) bool


@dataclass
class PassResult:
    """One pass's partial result; ``merge`` adds counts and concatenates collected keys."""

    bins: np.ndarray  # (B,) int64 unique, entry << DIGIT | next digit
    counts: np.ndarray  # (B,) int64
    entries: np.ndarray  # (V,) int64, entry of each collected key
    keys: np.ndarray  # (V,) uint64


def partition_pass(request: PassRequest, x: np.ndarray) -> PassResult:
    """A partition's share of one pass over its (rows, D) values (any numeric dtype; may be empty)."""
    x = np.asarray(x)
    x = x[:, None] if x.ndim == 1 else x
    keys = {dim: float_keys(x[:, dim]) for dim in np.unique(request.dims).tolist()}
    parts = []
    for dim, level in sorted(set(zip(request.dims.tolist(), request.levels.tolist()))):
        group = np.flatnonzero((request.dims == dim) & (request.levels == level))
        group = group[np.argsort(request.prefixes[group])]
        prefixes, column = request.prefixes[group], keys[dim]
        prefix = column >> np.uint64(64 - DIGIT * level) if level else np.zeros_like(column)
        slot = np.searchsorted(prefixes, prefix).clip(max=len(group) - 1)
        hit = prefixes[slot] == prefix
        slot, column = slot[hit], column[hit]
        collect = request.collect[group][slot]
        digit = (column[~collect] >> np.uint64(64 - DIGIT * (level + 1))).astype(np.int64) & (2**DIGIT - 1)
        counts = np.bincount(slot[~collect] << DIGIT | digit, minlength=len(group) << DIGIT)
        bins = np.flatnonzero(counts)
        parts.append(PassResult(group[bins >> DIGIT] << DIGIT | bins & (2**DIGIT - 1), counts[bins],
                                group[slot[collect]], column[collect]))
    return merge(parts)


def merge(parts: Iterable[PassResult]) -> PassResult:
    """Merge partial results of one pass (associative: merged results merge again)."""
    parts = list(parts)
    bins = np.concatenate([np.zeros(0, np.int64)] + [p.bins for p in parts])
    counts = np.concatenate([np.zeros(0, np.int64)] + [p.counts for p in parts])
    order = np.argsort(bins, kind="stable")
    bins, counts = bins[order], counts[order]
    first = np.flatnonzero(np.diff(bins, prepend=-1))
    return PassResult(bins[first], np.add.reduceat(counts, first),
                      np.concatenate([np.zeros(0, np.int64)] + [p.entries for p in parts]),
                      np.concatenate([np.zeros(0, np.uint64)] + [p.keys for p in parts]))


def first_request(dims: int) -> PassRequest:
    """The first pass, the same for every dataset: count the top DIGIT bits of every dimension (the stats tasks
    compute it beside the moments, so that the passes proper start at the second)."""
    every = np.arange(dims, dtype=np.int64)
    return PassRequest(every, np.zeros_like(every), np.zeros(dims, np.uint64), np.zeros(dims, bool))


def values_quantiles(x: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """(Q, D) quantiles of the rows of (rows, D) ``x``, when they are all at hand: ``np.quantile`` itself on the
    float64 values, a dimension at a time (NaN for every dimension when there are no rows)."""
    x = np.asarray(x)
    x = x[:, None] if x.ndim == 1 else x
    if x.shape[0] == 0:
        return np.full((len(qs), x.shape[1]), np.nan)
    with np.errstate(invalid="ignore"):  # inf - inf between neighbours is NaN, as np.quantile says, without a warning
        return np.stack([np.quantile(x[:, dim].astype(np.float64), qs) for dim in range(x.shape[1])], axis=1)


class DatasetQuantiles:
    """Client-side driver of the exact dataset quantiles (see the module docstring)::

        state = DatasetQuantiles(qs, dims)
        while not state.done:
            request = state.request()
            state.absorb(merge(partition_pass(request, x) for x in partitions))
        state.result()  # (Q, D)
    """

    def __init__(self, qs: Sequence[float], dims: int, budget: int = DEFAULT_BUDGET):
        self.qs, self.dims, self.budget = np.asarray(qs, dtype=np.float64), dims, budget
        self.passes = 0
        self.n: int | None = None  # rows, known after the first pass
        self._request: PassRequest | None = None
        self._targets: dict[str, np.ndarray] | None = None  # per (dim, rank): set by the first pass

    @property
    def done(self) -> bool:
        return self._targets is not None and bool(self._targets["done"].all())

    def request(self) -> PassRequest:
        if self._targets is None:
            self._request = first_request(self.dims)
            return self._request
        t = self._targets
        pending = ~t["done"]
        table = np.stack([t["dim"][pending], t["level"][pending], t["prefix"][pending].view(np.int64)], axis=1)
        unique, first = np.unique(table, axis=0, return_index=True)
        sizes = t["count"][pending][first]
        collect = np.zeros(len(unique), bool)
        by_size = np.argsort(sizes, kind="stable")
        collect[by_size[np.cumsum(sizes[by_size]) <= self.budget]] = True
        self._request = PassRequest(unique[:, 0], unique[:, 1], unique[:, 2].view(np.uint64), collect)
        return self._request

    def absorb(self, result: PassResult) -> None:
        """Take the merged result of the pass just requested."""
        request, self._request = self._request, None
        if request is None:
            raise RuntimeError("absorb() without a request()")
        self.passes += 1
        if self._targets is None:
            self._start(result)
        t = self._targets
        for entry in range(len(request.dims)):
            at = np.flatnonzero(~t["done"] & (t["dim"] == request.dims[entry]) & (t["level"] == request.levels[entry])
                                & (t["prefix"] == request.prefixes[entry]))
            if request.collect[entry]:
                keys = np.sort(result.keys[result.entries == entry])
                t["value"][at] = key_values(keys[t["rank"][at]])
                t["done"][at] = True
                continue
            mine = (result.bins >> DIGIT) == entry
            digits, counts = result.bins[mine] & (2**DIGIT - 1), result.counts[mine]
            cumulative = np.cumsum(counts)
            slot = np.searchsorted(cumulative, t["rank"][at], side="right")
            t["rank"][at] -= cumulative[slot] - counts[slot]
            t["count"][at] = counts[slot]
            t["prefix"][at] = t["prefix"][at] << np.uint64(DIGIT) | digits[slot].astype(np.uint64)
            t["level"][at] += 1
            full = at[t["level"][at] * DIGIT == 64]
            t["value"][full] = key_values(t["prefix"][full])
            t["done"][full] = True

    def _start(self, first: PassResult) -> None:
        """Targets from the first pass's counts: the rows, the ranks numpy needs, the dimensions with NaN."""
        per_entry = np.bincount(first.bins >> DIGIT, weights=first.counts, minlength=self.dims)
        self.n = int(per_entry[0]) if self.dims else 0
        nan_bin = np.arange(self.dims) << DIGIT | (2**DIGIT - 1)
        has_nan = np.isin(nan_bin, first.bins)
        self._low, self._high, self._gamma = _positions(max(self.n, 1), self.qs)
        ranks = np.unique(np.concatenate([self._low, self._high]))
        dim = np.repeat(np.arange(self.dims, dtype=np.int64), len(ranks))
        self._ranks = ranks
        self._targets = {
            "dim": dim, "level": np.zeros_like(dim), "prefix": np.zeros(len(dim), np.uint64),
            "rank": np.tile(ranks, self.dims), "count": np.full(len(dim), self.n, np.int64),
            "value": np.full(len(dim), np.nan), "done": has_nan[dim] | (self.n == 0),
        }

    def result(self) -> np.ndarray:
        """(Q, D) quantiles."""
        if not self.done:
            raise RuntimeError("quantiles not done: more passes needed")
        values = self._targets["value"].reshape(self.dims, len(self._ranks))
        low = values[:, np.searchsorted(self._ranks, self._low)].T
        high = values[:, np.searchsorted(self._ranks, self._high)].T
        return _lerp(low, high, self._gamma[:, None])


def dataset_quantiles(partitions: Sequence[np.ndarray], qs: Sequence[float], dims: int,
                      budget: int = DEFAULT_BUDGET) -> np.ndarray:
    """(Q, D) exact quantiles of the rows of all ``partitions`` (each (rows, D)), locally: the reference use
    of ``DatasetQuantiles`` (on Dask, each ``partition_pass`` is a task and ``merge`` the tree reduction)."""
    state = DatasetQuantiles(qs, dims, budget)
    while not state.done:
        request = state.request()
        state.absorb(merge(partition_pass(request, x) for x in partitions))
    return state.result()
