"""Partial moments that merge exactly: the one piece of arithmetic every stat goes through.

A :class:`Moments` holds, per component (vector dimension or colour channel), the count, mean, sum of
squared deviations (M2), min and max of some observations, plus ``samples``: the number of rows or
frames they came from (the ``count`` that v2.1 writes).  A :class:`MomentsTable` holds those of many
episodes as arrays: ``segments`` builds one from contiguous row segments (vectorized), ``total`` merges
its rows (the one merge formula: ``Moments.merge`` and ``merge_all`` use it too).

Integer (and bool) data also carry ``sums``: the exact sum and sum of squares as Python integers, so that their
moments merge exactly and the mean and M2 are the correctly rounded values, even near 2**63.  Float data are
summed around a shift (a segment's first value; in a merge, the mean of the largest part), so that a constant
column gets exactly its value and std 0.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

quietly = np.errstate(all="ignore")  # NaN/inf follow numpy's values without its RuntimeWarnings (a nonfinite warning
# of ours names the episodes holding them)


@dataclass
class Moments:
    count: np.ndarray  # int64, per component
    mean: np.ndarray  # float64
    m2: np.ndarray  # float64, sum of squared deviations from the mean
    min: np.ndarray  # the data's own dtype (float32/float64/int64/bool) or float64 for pixels
    max: np.ndarray
    samples: int  # rows (parquet) or sampled frames (video) behind these moments
    nonfinite: int = 0  # rows holding NaN or infinity (stats then follow numpy: NaN propagates)
    quantiles: np.ndarray | None = None  # (Q, D): exact quantiles of these observations, when asked for
    histogram: np.ndarray | None = None  # (C, 256): pixel counts behind pixel moments (they merge by adding)
    sums: np.ndarray | None = None  # (2, D) Python ints: exact sum and sum of squares of integer data

    def merge(self, other: Moments) -> Moments:
        return merge_all([self, other])

    @property
    @quietly
    def std(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.m2, 0.0) / self.count)


def merge_all(parts: list[Moments]) -> Moments:
    """Merge a non-empty list of partial moments (``MomentsTable.total``)."""
    return parts[0] if len(parts) == 1 else MomentsTable.of(np.zeros(len(parts), np.int64), parts).total()


@dataclass
class MomentsTable:
    """The moments of many row segments (episodes) at once, as arrays with a leading segment axis: compact to
    send and checkpoint (a handful of arrays instead of thousands of small objects)."""

    keys: np.ndarray  # (n,) the episode of each segment
    count: np.ndarray  # (n, D)
    mean: np.ndarray
    m2: np.ndarray
    min: np.ndarray
    max: np.ndarray
    samples: np.ndarray  # (n,)
    nonfinite: np.ndarray  # (n,)
    quantiles: np.ndarray  # (n, Q, D); Q = 0 when no quantiles were asked for
    histogram: np.ndarray  # (n, C, 256) pixel counts; C = 0 for non-pixel features
    sums: np.ndarray  # (n, 2, D) objects: exact sum and sum of squares of integer data; (n, 0, D) otherwise

    @classmethod
    @quietly
    def segments(cls, keys: np.ndarray, x: np.ndarray, starts: np.ndarray, qs: tuple[float, ...] = ()) -> MomentsTable:
        """Moments (and the quantiles ``qs``) of each contiguous row segment ``x[starts[i]:starts[i+1]]``
        (belonging to ``keys[i]``), vectorized with ``reduceat``."""
        from .quantiles import segment_quantiles

        if x.ndim == 1:
            x = x[:, None]
        lengths = np.diff(np.append(starts, x.shape[0]))
        reduce_x = x.view(np.uint8) if x.dtype == np.bool_ else x  # reduceat has no bool min/max
        mins = np.minimum.reduceat(reduce_x, starts, axis=0)
        maxs = np.maximum.reduceat(reduce_x, starts, axis=0)
        xf = x.astype(np.float64)
        if x.dtype.kind in "biu":
            sums = integer_sums(reduce_x, starts, lengths, mins, maxs)
            means, m2 = exact_mean_m2(sums, lengths[:, None])
        else:
            sums = np.zeros((len(starts), 0, x.shape[1]), object)
            shift = np.where(np.isfinite(xf[starts]), xf[starts], 0.0)  # each segment's first value
            deviations = xf - np.repeat(shift, lengths, axis=0)
            offsets = np.add.reduceat(deviations, starts, axis=0) / lengths[:, None]
            means = shift + offsets
            m2 = np.add.reduceat((deviations - np.repeat(offsets, lengths, axis=0)) ** 2, starts, axis=0)
        mins, maxs = mins.astype(x.dtype), maxs.astype(x.dtype)
        bad_rows = ~np.isfinite(xf).all(axis=1)
        nonfinite = np.add.reduceat(bad_rows, starts) if bad_rows.any() else np.zeros(len(starts), np.int64)
        count = np.repeat(lengths.astype(np.int64)[:, None], x.shape[1], axis=1)
        quantiles = segment_quantiles(x, starts, qs) if qs else np.zeros((len(starts), 0, x.shape[1]))
        return cls(np.asarray(keys), count, means, m2, mins, maxs, lengths.astype(np.int64), nonfinite, quantiles,
                   np.zeros((len(starts), 0, 256), np.int64), sums)

    @classmethod
    def of(cls, keys: np.ndarray, moments: list[Moments]) -> MomentsTable:
        """The table of separately computed ``moments`` (one per key)."""
        stack = lambda name: np.stack([getattr(m, name) for m in moments])
        width = len(moments[0].count)
        quantiles = np.stack([m.quantiles if m.quantiles is not None else np.zeros((0, width)) for m in moments])
        histogram = np.stack([m.histogram if m.histogram is not None else np.zeros((0, 256), np.int64)
                              for m in moments])
        exact = all(m.sums is not None for m in moments)
        sums = np.stack([m.sums if exact else np.zeros((0, width), object) for m in moments])
        return cls(np.asarray(keys), stack("count"), stack("mean"), stack("m2"), stack("min"), stack("max"),
                   np.array([m.samples for m in moments]), np.array([m.nonfinite for m in moments]), quantiles,
                   histogram, sums)

    @classmethod
    def concat(cls, tables: list[MomentsTable]) -> MomentsTable:
        tables = _with_common_sums(tables)
        return cls(*(np.concatenate([getattr(t, name) for t in tables]) for name in cls.__dataclass_fields__))

    def take(self, rows: np.ndarray) -> MomentsTable:
        return MomentsTable(*(getattr(self, name)[rows] for name in self.__dataclass_fields__))

    def arrange(self, keys: np.ndarray) -> MomentsTable:
        """One row per key of ``keys``, in that order; rows sharing a key (an episode split across
        partitions) are merged."""
        unique, first, repeats = np.unique(self.keys, return_index=True, return_counts=True)
        table = self
        if (repeats > 1).any():
            merged: dict[int, Moments] = {}
            for key, moments in self.rows():
                merged[key] = merged[key].merge(moments) if key in merged else moments
            table = MomentsTable.of(np.array(list(merged)), list(merged.values()))
            unique, first = np.unique(table.keys, return_index=True)
        slot = np.minimum(np.searchsorted(unique, keys), len(unique) - 1)
        if len(unique) == 0 or (unique[slot] != keys).any():
            raise KeyError(f"no moments for keys {np.asarray(keys)[unique[slot] != keys][:5].tolist()}")
        return table.take(first[slot])

    @quietly
    def total(self) -> Moments:
        """All rows merged in one vectorized step: counts add; integer data add their exact sums; otherwise the
        mean is the count-weighted mean of the rows' offsets from a shift (the mean of the largest row) and
        M2 = sum of the rows' M2 + sum of count * (row mean - mean)^2 (Chan et al.'s pairwise update)."""
        total = self.count.sum(axis=0)
        sums = self.sums.sum(axis=0) if self.sums.shape[1] and len(self.keys) else None
        if sums is not None:
            mean, m2 = exact_mean_m2(sums[None], total[None])
            mean, m2 = mean[0], m2[0]
        else:
            shift = self.mean[self.count.argmax(axis=0), np.arange(self.mean.shape[1])] if len(self.keys) else 0.0
            shift = np.where(np.isfinite(shift), shift, 0.0)
            weight = np.divide(self.count, total, out=np.zeros(self.count.shape), where=total > 0)
            mean = shift + (weight * (self.mean - shift)).sum(axis=0)
            m2 = self.m2.sum(axis=0) + (self.count * (self.mean - mean) ** 2).sum(axis=0)
        return Moments(
            count=total,
            mean=mean,
            m2=m2,
            min=self.min.min(axis=0),
            max=self.max.max(axis=0),
            samples=int(self.samples.sum()),
            nonfinite=int(self.nonfinite.sum()),
            histogram=self.histogram.sum(axis=0) if self.histogram.shape[1] else None,
            sums=sums,
        )

    @property
    @quietly
    def std(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.m2, 0.0) / self.count)

    def rows(self) -> list[tuple[int, Moments]]:
        """(key, Moments) of every segment."""
        return [(int(k), Moments(self.count[i], self.mean[i], self.m2[i], self.min[i], self.max[i],
                                 int(self.samples[i]), int(self.nonfinite[i]), self.quantiles[i],
                                 self.histogram[i] if self.histogram.shape[1] else None,
                                 self.sums[i] if self.sums.shape[1] else None))
                for i, k in enumerate(self.keys)]


def integer_sums(x: np.ndarray, starts: np.ndarray, lengths: np.ndarray, mins: np.ndarray,
                 maxs: np.ndarray) -> np.ndarray:
    """(n, 2, D) Python ints: the exact sum and sum of squares of each segment of integer ``x`` (given each
    segment's min and max).  Vectorized in int64 around each segment's min when that cannot overflow, with Python
    integers otherwise (e.g. nanosecond clocks, whose segments span more than 2**31)."""
    low = mins.astype(object)
    spread = maxs.astype(object) - low
    n = lengths.astype(object)[:, None]
    if x.size and max(spread.max(), 1) < 2**31 and (n * spread * spread).max() < 2**62:
        d = x.astype(np.int64) - np.repeat(mins.astype(np.int64), lengths, axis=0)
        total = np.add.reduceat(d, starts, axis=0).astype(object)
        squares = np.add.reduceat(d * d, starts, axis=0).astype(object)
        return np.stack([n * low + total, n * low * low + 2 * low * total + squares], axis=1)
    values = x.astype(object)
    return np.stack([np.add.reduceat(values, starts, axis=0), np.add.reduceat(values * values, starts, axis=0)],
                    axis=1)


def exact_mean_m2(sums: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The correctly rounded mean and M2 (sum of squared deviations) from exact ``sums`` (n, 2, D) and counts."""
    n = np.broadcast_to(count, sums[:, 0].shape).astype(object)
    n = np.where(n > 0, n, 1)
    total, squares = sums[:, 0], sums[:, 1]
    return (total / n).astype(np.float64), ((squares * n - total * total) / n).astype(np.float64)


def _with_common_sums(tables: list[MomentsTable]) -> list[MomentsTable]:
    """``tables`` as they are when all or none carry exact sums; else without them (the float merge serves)."""
    if len({t.sums.shape[1] for t in tables}) == 1:
        return tables
    return [replace(t, sums=np.zeros((len(t.keys), 0, t.sums.shape[2]), object)) for t in tables]


class MomentsByKey:
    """One row per key of ``keys`` (in that order), filled in as partial tables arrive, in any order: each is written
    in place (nothing is kept per part); a key that arrives again (an episode split across partitions) is merged
    exactly.  A column whose dtype widens in a later part (an int32 file after an int64 one) is widened."""

    def __init__(self, keys: np.ndarray):
        self.keys = np.asarray(keys, dtype=np.int64)
        self._order = np.argsort(self.keys, kind="stable")
        self._table: MomentsTable | None = None
        self._filled = np.zeros(len(self.keys), dtype=bool)

    def _rows(self, keys: np.ndarray) -> np.ndarray:
        slot = np.minimum(np.searchsorted(self.keys, keys, sorter=self._order), len(self.keys) - 1)
        rows = self._order[slot]
        unknown = self.keys[rows] != keys
        if unknown.any():
            raise KeyError(f"moments of unknown keys {np.asarray(keys)[unknown][:5].tolist()}")
        return rows

    def add(self, part: MomentsTable) -> None:
        rows = self._rows(part.keys)
        if self._table is not None:
            self._table, part = _with_common_sums([self._table, part])
        if self._table is None:
            self._table = MomentsTable(self.keys, *(np.zeros((len(self.keys), *getattr(part, name).shape[1:]),
                                                             getattr(part, name).dtype) for name in _COLUMNS))
        if self._filled[rows].any() or len(np.unique(rows)) < len(rows):
            keys = np.unique(part.keys)
            part = MomentsTable.concat([self._table.take(rows[self._filled[rows]]), part]).arrange(keys)
            rows = self._rows(keys)
        for name in _COLUMNS:
            column, values = getattr(self._table, name), getattr(part, name)
            if np.result_type(column, values) != column.dtype:
                column = column.astype(np.result_type(column, values))
                setattr(self._table, name, column)
            column[rows] = values
        self._filled[rows] = True

    def table(self) -> MomentsTable:
        """The filled table; KeyError names keys that never arrived."""
        if self._table is None or not self._filled.all():
            raise KeyError(f"no moments for keys {self.keys[~self._filled][:5].tolist()}")
        return self._table


_COLUMNS = [name for name in MomentsTable.__dataclass_fields__ if name != "keys"]
