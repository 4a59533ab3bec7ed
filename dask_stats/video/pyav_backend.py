"""PyAV (FFmpeg) backend: demux once for the frame index, then decode only the packets the chosen frames need.

``frame_times`` demuxes the stream once (no decoding) and keeps, per packet in decode order, its pts and
keyframe flag (and the packets themselves while they total at most ``KEEP_PACKETS_BYTES``).  ``read``
then plans, for every wanted frame, the packets from the keyframe it depends on to its own packet,
merges those into runs, and feeds only the packets of the runs to the decoder (from the kept packets,
or from a second demux pass of a freshly opened file).  Skipped packets cost at most demuxing; there is
no container seek and no decoder re-initialisation between runs.  With short GOPs
(LeRobot encodes with g=2) and sparse samples this decodes little more than the sampled frames; with
dense samples or long GOPs the runs merge into one sequential decode, so the choice between "seek" and
"decode everything" falls out of the plan instead of a threshold.

Decoded frames are mapped back to frame numbers by their pts, never by counting, so a run may start
anywhere.  Only wanted frames are converted to RGB (swscale's ``rgba`` output viewed as RGB: the pixels of
``to_ndarray(format="rgb24")``, with one swscale thread, as Dask already uses every core).  Streams whose
packets lack a pts, or have duplicate pts, fall back to one sequential decode numbered by position.

Damage is never concealed into the numbers: a packet the decoder rejects, or a frame it flags as corrupt
(FFmpeg's error concealment filled in part of it), raises :class:`DamagedVideoError` naming the frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .base import NotInOrder, VideoBackend, VideoReader

KEEP_PACKETS_BYTES = 32 * 2**20  # compressed packets held from the index pass (per open file) at most


class DamagedVideoError(ValueError):
    """The decoder met damaged data: the frame it concerns (presentation number) and what FFmpeg said."""

    def __init__(self, frame: int | None, detail: str):
        where = f"frame {frame}" if frame is not None else "a frame"
        super().__init__(f"the video is damaged at {where} ({detail}); its pixels would be guessed by error "
                         "concealment, so no stats are computed from it. Re-encode or restore the file")
        self.frame = frame


def _checked(frames, number):
    """``frames`` from the decoder, refusing any it flags as corrupt (``number(frame)``: its frame number)."""
    for frame in frames:
        if frame.is_corrupt:
            raise DamagedVideoError(number(frame), "the decoder flagged the frame as corrupt")
        yield frame


def _in_sequence(container) -> Iterator[tuple[int, object]]:
    """Every frame of the first video stream in decode order, with its position; a decoder error or a frame the
    decoder flags as corrupt is a DamagedVideoError naming the position."""
    import av

    frames = container.decode(video=0)
    position = 0
    while True:
        try:
            frame = next(frames, None)
        except av.error.FFmpegError as exc:
            raise DamagedVideoError(position, f"decoding failed: {exc}") from exc
        if frame is None:
            return
        if frame.is_corrupt:
            raise DamagedVideoError(position, "the decoder flagged the frame as corrupt")
        yield position, frame
        position += 1


def _decode(codec, packet, frame: int | None):
    """``codec.decode(packet)``, a decoder error named by the frame the packet carries."""
    import av

    try:
        return codec.decode(packet)
    except av.error.FFmpegError as exc:
        raise DamagedVideoError(frame, f"decoding failed: {exc}") from exc


@dataclass(frozen=True)
class DecodePlan:
    """Runs of packets to decode (decode-order positions, inclusive) and the frames wanted from each."""

    runs: list[tuple[int, int]]
    wanted: list[np.ndarray]  # presentation indices produced by each run, sorted

    @property
    def packets(self) -> int:
        return sum(end - start + 1 for start, end in self.runs)


def plan_decode(pts: np.ndarray, keyframe: np.ndarray, indices: np.ndarray) -> DecodePlan:
    """Which packets to decode for the frames ``indices`` (presentation order).

    ``pts`` and ``keyframe`` are per packet, in decode order.  Frame ``i`` (the i-th smallest pts) is
    carried by packet ``d = order[i]``; it needs the packets from the last keyframe ``k <= d`` that is
    not presented after frame ``i`` (so open-GOP leading pictures start one GOP earlier), up to ``d``.
    Overlapping or adjacent intervals merge into one run.
    """
    order = np.argsort(pts, kind="stable")  # presentation index -> decode position
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))  # decode position -> presentation index
    keys = np.append(np.flatnonzero(keyframe), 0)  # keys[-1] = 0: where a frame before any keyframe starts
    indices = np.asarray(indices, dtype=np.int64)
    ends = order[indices]
    slot = np.searchsorted(keys[:-1], ends, side="right") - 1  # the last keyframe at or before each packet
    for n in np.flatnonzero((slot >= 0) & (rank[keys[slot]] > indices)):
        while slot[n] >= 0 and rank[keys[slot[n]]] > indices[n]:  # a leading picture: go one GOP back
            slot[n] -= 1
    starts = keys[slot]
    by_start = np.lexsort((ends, starts))
    starts, ends, indices = starts[by_start], ends[by_start], indices[by_start]
    first = np.ones(len(starts), dtype=bool)  # where a run begins: past the reach of every earlier interval
    first[1:] = starts[1:] > np.maximum.accumulate(ends)[:-1] + 1
    heads = np.flatnonzero(first)
    runs = list(zip(starts[heads].tolist(), np.maximum.reduceat(ends, heads).tolist()))
    return DecodePlan(runs, [np.unique(w) for w in np.split(indices, heads[1:])])


class PyAVReader(VideoReader):
    def __init__(self, path: str | Path, threads: int = 1):
        import av

        self._av = av
        self._path = str(path)
        self._threads = threads
        self._container = self._open()
        self._times: np.ndarray | None = None
        self._pts: np.ndarray | None = None  # per packet, decode order
        self._key: np.ndarray | None = None
        self._by_pts: dict[int, int] = {}  # pts -> frame number (empty: number frames by position)
        self._packets: list | None = None  # the demuxed packets, kept when small (no second demux pass)
        self._window: tuple[float, float] | None = None  # the stretch of the file to index (None: all of it)

    def _open(self):
        container = self._av.open(self._path)
        try:
            codec = container.streams.video[0].codec_context
            codec.thread_count = self._threads
            codec.thread_type = "AUTO" if self._threads > 1 else "SLICE"
        except BaseException:  # e.g. no video stream: do not leak the open container
            container.close()
            raise
        return container

    # -- the index ------------------------------------------------------------------------------
    def limit(self, start_s: float, end_s: float) -> None:
        if self._times is None:
            self._window = (start_s, end_s)

    def _seek(self, stream, pts: int) -> None:
        """Position the demuxer at the keyframe at or before ``pts`` (in the stream's time base)."""
        self._container.seek(max(int(pts), 0), stream=stream, backward=True, any_frame=False)

    def _index(self) -> None:
        stream = self._container.streams.video[0]
        pts, key, missing = [], [], False
        packets, kept = [], 0
        end, beyond = None, 0  # windowed: the last pts wanted; keyframes met after it
        if self._window is not None:
            start_s, end_s = self._window
            self._seek(stream, start_s / stream.time_base)
            end = end_s / stream.time_base
        for packet in self._container.demux(stream):
            if packet.size == 0:  # the demuxer's final empty packet
                continue
            if end is not None and packet.is_keyframe and packet.pts is not None and packet.pts > end:
                beyond += 1
                if beyond == 2:  # past the window by a whole GOP: no frame of the window is left to come
                    break
            if packet.pts is None:
                missing = True
            pts.append(packet.pts if packet.pts is not None else -1)
            key.append(packet.is_keyframe)
            if packets is not None:
                kept += packet.size
                packets.append(packet)
                if kept > KEEP_PACKETS_BYTES:
                    packets = None  # too large to hold: read() demuxes again
        self._packets = packets
        self._pts = np.asarray(pts, dtype=np.int64)
        self._key = np.asarray(key, dtype=bool)
        ordered = np.sort(self._pts[self._pts >= 0] if missing else self._pts)
        if missing or (len(ordered) > 1 and (np.diff(ordered) == 0).any()):
            if self._window is not None:  # numbered by position: only from the file's start
                self._window = None
                self._container.close()
                self._container = self._open()
                return self._index()
            self._by_pts = {}  # frames are numbered by decode position (sequential decode)
        else:
            self._by_pts = {int(p): i for i, p in enumerate(ordered)}
        self._times = ordered.astype(np.float64) * float(stream.time_base)

    def frame_times(self) -> np.ndarray:
        if self._times is None:
            self._index()
        return self._times

    # -- decoding -------------------------------------------------------------------------------
    def read(self, indices: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        reformatter = self._av.video.reformatter.VideoReformatter()

        def rgb(frame) -> np.ndarray:
            # rgba, then the RGB view: the same pixels as rgb24 (one swscale path), faster to convert, and
            # pixels.channel_histograms maps the 4-byte layout without a copy
            return reformatter.reformat(frame, format="rgba", threads=1).to_ndarray()[..., :3]

        return self._frames(indices, rgb)

    def read_depth(self, indices: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        return self._frames(indices, lambda frame: frame.to_ndarray(format="gray12le"))  # as lerobot decodes them

    def _frames(self, indices: np.ndarray, rgb) -> Iterator[tuple[int, np.ndarray]]:
        """The frames at ``indices``, each converted by ``rgb``."""
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) == 0:
            return
        self.frame_times()
        if self._packets is None or not self._by_pts:
            self._container.close()  # a fresh demuxer and decoder: no seek, no state from the index pass
            self._container = self._open()
        if not self._by_pts:
            yield from self._read_sequential(indices, rgb)
        else:
            yield from _in_order(self._read_runs(plan_decode(self._pts, self._key, indices), rgb), indices)

    def decode_all(self) -> Iterator[tuple[float, np.ndarray]]:
        """One decode loop over the whole stream, no index pass (the frame times come from the frames)."""
        if self._times is not None or self._window is not None:  # indexed already, or a stretch of a shared file
            yield from super().decode_all()
            return
        time_base = float(self._container.streams.video[0].time_base)
        reformatter = self._av.video.reformatter.VideoReformatter()
        last = None
        for position, frame in _in_sequence(self._container):
            if frame.pts is None or (last is not None and frame.pts <= last):
                self._container.close()  # read the ordinary way from a fresh demuxer
                self._container = self._open()
                raise NotInOrder(f"frame {position} has pts {frame.pts} after {last}")
            last = frame.pts
            yield float(frame.pts) * time_base, reformatter.reformat(frame, format="rgba", threads=1).to_ndarray()[
                ..., :3]

    def _read_sequential(self, indices: np.ndarray, rgb) -> Iterator[tuple[int, np.ndarray]]:
        wanted = iter(int(i) for i in indices)
        target = next(wanted, None)
        if target is None:
            return
        for position, frame in _in_sequence(self._container):
            if position == target:
                yield position, rgb(frame)
                target = next(wanted, None)
                if target is None:
                    return  # decode no further than the last frame wanted

    def _read_runs(self, plan: DecodePlan, rgb) -> Iterator[tuple[int, np.ndarray]]:
        """Feed the packets of each run (identified by pts) to the decoder; yield wanted frames as they come."""
        by_pts, pts = self._by_pts, self._pts
        run_of = {int(pts[d]): r for r, (start, end) in enumerate(plan.runs) for d in range(start, end + 1)}
        last_of = {int(pts[end]): r for r, (_, end) in enumerate(plan.runs)}
        wanted = [set(w.tolist()) for w in plan.wanted]
        left = len(plan.runs)
        stream = self._container.streams.video[0]
        codec = stream.codec_context

        def take(frames, run):
            for frame in _checked(frames, lambda f: by_pts.get(f.pts)):
                index = by_pts.get(frame.pts)
                if index in wanted[run]:
                    wanted[run].discard(index)
                    yield index, rgb(frame)

        if self._packets is not None:  # kept from the index pass: only the runs' packets are touched
            codec.flush_buffers()  # nothing left over from an earlier read()
            packets = (self._packets[d] for start, end in plan.runs for d in range(start, end + 1))
        else:  # from the first run's keyframe on (every run starts at one), not from the start of the file
            self._seek(stream, pts[plan.runs[0][0]])
            packets = self._container.demux(stream)
        run = 0
        for packet in packets:
            run = run_of.get(packet.pts, -1) if packet.size else -1
            if run < 0:
                continue
            yield from take(_decode(codec, packet, by_pts.get(packet.pts)), run)
            if packet.pts in last_of:
                if wanted[run]:  # still inside the decoder (reordering, frame threads): drain it
                    yield from take(_decode(codec, None, None), run)
                    codec.flush_buffers()
                if wanted[run]:
                    raise ValueError(f"the decoder returned no frame for frames {sorted(wanted[run])[:5]}; "
                                     "the video may be damaged")
                left -= 1
                if left == 0:
                    return
        missing = sorted(i for w in wanted for i in w)
        raise ValueError(f"the video ended before frames {missing[:5]} were decoded (truncated file?)")

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


def _in_order(frames: Iterator[tuple[int, np.ndarray]], indices: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``frames`` in the order of ``indices``, holding the (rare) early ones back."""
    held: dict[int, np.ndarray] = {}
    expected = iter(int(i) for i in indices)
    target = next(expected, None)
    for index, frame in frames:
        held[index] = frame
        while target in held:
            yield target, held.pop(target)
            target = next(expected, None)
    while target in held:
        yield target, held.pop(target)
        target = next(expected, None)


class PyAVBackend(VideoBackend):
    name = "pyav"
    requires = ("av",)
    install_hint = "pip install av"

    def open(self, path: str | Path) -> PyAVReader:
        return PyAVReader(path, self.threads)
