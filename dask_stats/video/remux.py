"""Probe episode videos, concatenate one camera's episodes into one MP4 by stream copy, and cut them out again
(PyAV).

Concatenating: every episode's packets are shifted by an exact integer offset in the stream time base, chosen so
that PTS and DTS stay strictly increasing across episodes (episodes that start with B-frames, i.e. negative DTS,
included). ``from_timestamp`` is that offset times the time base, computed with fractions.  Cutting
(:func:`cut_episodes`) shifts each episode back so that it starts at 0.
"""

from __future__ import annotations

import bisect
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

import av

from ..errors import DatasetError, Problem
from ..storage.atomic import atomic_path
from .encode import EncoderSettings, encode_frames


class Signature(NamedTuple):
    """What must match for episodes to share a file (stream copy cannot mix them)."""

    codec: str
    width: int
    height: int
    pix_fmt: str
    frame_rate: str  # a Fraction as text, e.g. "30" or "30000/1001"
    time_base: str  # e.g. "1/15360"


@dataclass(frozen=True)
class PacketSpan:
    """What the offset computation needs to know about one episode's packets (in its time base)."""

    first_dts: int
    last_dts: int
    min_pts: int
    end_pts: int  # max(pts + duration): where the next episode may start presenting
    frame_duration: int  # the most common packet duration (0 when unknown)
    packets: int


def stream_signature(path: str) -> Signature:
    """The stream signature of a video file's first video stream."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DatasetError(Problem("no video stream", path=str(path)))
            stream = container.streams.video[0]
            ctx = stream.codec_context
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            return Signature(
                ctx.codec.canonical_name, int(ctx.width), int(ctx.height), ctx.format.name if ctx.format else "",
                str(Fraction(rate)) if rate else "", str(stream.time_base),
            )
    except av.FFmpegError as err:
        raise DatasetError(Problem(f"cannot open the video: {err}", path=str(path))) from err


def packet_span(path: str) -> tuple[PacketSpan, Fraction, Fraction | None]:
    """Scan a video's packets (no decoding): its span, time base and declared stream duration in seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        first_dts = last_dts = min_pts = max_pts = max_end = None
        durations: dict[int, int] = {}
        count = 0
        for packet in container.demux(stream):
            if packet.dts is None and packet.pts is None:
                continue  # flush packet
            if packet.pts is None or packet.dts is None:
                raise DatasetError(Problem("a packet without PTS or DTS: cannot shift it exactly", path=str(path)))
            duration = int(packet.duration or 0)
            durations[duration] = durations.get(duration, 0) + 1
            if first_dts is None:
                first_dts = last_dts = packet.dts
                min_pts = max_pts = packet.pts
                max_end = packet.pts + duration
            else:
                if packet.dts <= last_dts:
                    raise DatasetError(Problem("DTS not strictly increasing inside the episode's video",
                                               path=str(path)))
                last_dts = packet.dts
                min_pts, max_pts = min(min_pts, packet.pts), max(max_pts, packet.pts)
                max_end = max(max_end, packet.pts + duration)
            count += 1
        if count == 0:
            raise DatasetError(Problem("the video has no packets", path=str(path)))
        frame_duration = max(durations, key=durations.get)
        end_pts = max(max_end, max_pts + (frame_duration or 1))  # strictly after the last frame
        duration_s = Fraction(stream.duration) * stream.time_base if stream.duration is not None else None
        return (PacketSpan(first_dts, last_dts, min_pts, end_pts, frame_duration, count),
                Fraction(stream.time_base), duration_s)


def episode_offsets(spans: Sequence[PacketSpan]) -> list[int]:
    """Integer offsets (time-base units) that put the episodes one after the other without a gap: episode e's
    first frame is presented exactly when episode e-1's last frame ends.

    A gapless timeline is what lerobot's readers need: its torchcodec path turns a time into a frame index with
    the frame rate (``round(t * fps)``), so any gap shifts every later frame.  DTS are not shifted this way:
    :func:`concat_videos` moves the first decode times of an episode that starts with B-frames forward.
    """
    offsets: list[int] = []
    end = None
    for span in spans:
        offsets.append(0 if end is None else end - span.min_pts)
        end = offsets[-1] + span.end_pts
    return offsets


def concat_videos(sources: Sequence[str], dest: str) -> list[tuple[float, float]]:
    """Concatenate episode videos (one camera, same signature, in order) into ``dest`` by stream copy.

    Returns per episode ``(from_timestamp, to_timestamp)`` in seconds: ``from`` = its exact offset x time base,
    ``to`` = ``from`` + the episode video's duration (as lerobot writes it: stream duration x time base).
    """
    if not sources:
        raise ValueError("concat_videos needs at least one source video")
    signatures = [stream_signature(path) for path in sources]
    for path, signature in zip(sources, signatures):
        if signature != signatures[0]:
            raise DatasetError(Problem(
                f"stream differs from the file's first episode ({signature} vs {signatures[0]}): "
                "stream copy cannot mix them", path=str(path)))
    scans = [packet_span(path) for path in sources]
    time_base = scans[0][1]
    offsets = episode_offsets([span for span, _, _ in scans])

    with atomic_path(dest) as tmp:
        with av.open(tmp, "w", format="mp4", options={"movflags": "faststart"}) as output:
            out_stream = None
            last_dts = None
            for path, offset, (span, _, _) in zip(sources, offsets, scans):
                # decode times must increase and, from the second episode on, start at its first presentation:
                # demuxers seek by decode time, so a seek to the previous episode's last frame must not land on
                # this episode's first keyframe (an episode starting with B-frames decodes before it presents)
                floor = None if last_dts is None else offset + span.min_pts
                with av.open(str(path)) as container:
                    in_stream = container.streams.video[0]
                    if out_stream is None:
                        out_stream = output.add_stream_from_template(template=in_stream, opaque=True)
                        out_stream.time_base = in_stream.time_base
                    for packet in container.demux(in_stream):
                        if packet.dts is None and packet.pts is None:
                            continue
                        packet.pts += offset
                        packet.dts += offset
                        if floor is not None:
                            packet.dts = max(packet.dts, floor)
                            floor = None
                        if last_dts is not None and packet.dts <= last_dts:
                            packet.dts = last_dts + 1  # still <= its PTS: every PTS of the episode is >= its floor
                        last_dts = packet.dts
                        packet.stream = out_stream
                        output.mux(packet)
            out_tb = Fraction(out_stream.time_base)
        if (time_base / out_tb).denominator != 1:
            raise DatasetError(Problem(
                f"the muxer changed the time base {time_base} to {out_tb}: offsets are no longer exact",
                path=str(dest)))

    result = []
    for offset, (span, _, duration_s) in zip(offsets, scans):
        start = Fraction(offset) * time_base
        if duration_s is None:
            duration_s = Fraction(span.end_pts - span.min_pts) * time_base
        result.append((float(start), float(start + duration_s)))
    return result


def output_packets(path: str) -> list[tuple[int, int]]:
    """(pts, dts) of every packet of a video's first video stream, in file order (for checks and tests)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [(p.pts, p.dts) for p in container.demux(stream) if p.dts is not None or p.pts is not None]


def file_size(path: str) -> int:
    return os.path.getsize(path)


@dataclass(frozen=True)
class EpisodeCut:
    """What :func:`cut_episodes` did with one episode: ``frames`` written; ``reason`` why a stream copy could not
    cut it (then it was re-encoded, or, without encoder settings, not written: ``frames`` is 0)."""

    frames: int
    reason: str | None = None

    @property
    def stream_copied(self) -> bool:
        return self.reason is None

    @property
    def written(self) -> bool:
        return self.frames > 0


class _Discard(Exception):
    """Abandons an episode's output file (its temporary is removed)."""


class _Run:
    """One episode's output while its packets arrive: a stream copy shifted back by ``offset`` ticks."""

    def __init__(self, dest: str, template, offset: int):
        self.stack = ExitStack()
        tmp = self.stack.enter_context(atomic_path(dest))
        self.output = self.stack.enter_context(av.open(tmp, "w", format="mp4", options={"movflags": "faststart"}))
        self.stream = self.output.add_stream_from_template(template=template, opaque=True)
        self.stream.time_base = template.time_base
        self.offset, self.frames = offset, 0

    def mux(self, packet) -> None:
        packet.pts -= self.offset
        packet.dts -= self.offset
        packet.stream = self.stream
        self.output.mux(packet)
        self.frames += 1

    def finish(self, time_base: Fraction) -> None:
        out_tb = Fraction(self.stream.time_base)
        if (time_base / out_tb).denominator != 1:
            self.discard()
            raise DatasetError(Problem(f"the muxer changed the time base {time_base} to {out_tb}"))
        self.stack.close()

    def discard(self) -> None:
        self.stack.__exit__(_Discard, _Discard(), None)


def cut_episodes(source: str, spans: Sequence[tuple[float, float]], dests: Sequence[str], *,
                 tolerance_s: float = 1e-4, fps: float | None = None,
                 reencode: EncoderSettings | None = None) -> list[EpisodeCut]:
    """Cut episodes out of the concatenated video ``source`` into ``dests`` by stream copy, in one pass.

    Episode e is every frame presented in ``[from - tolerance, to - tolerance)`` of ``spans[e] = (from, to)``
    (v3.0's ``from_timestamp``/``to_timestamp``, in order, not overlapping); its packets are shifted back by
    ``from`` (rounded to the time base) so that it starts at 0, DTS included (B-frames keep their decode delay).
    A stream copy needs the episode's packets to be one run in decode order starting on a keyframe (lerobot's
    files concatenate per-episode encodes, so they are); otherwise the episode is decoded and re-encoded alone
    with ``reencode`` (frame times rounded to 1 / ``fps``), or, without it, not written.
    """
    if len(spans) != len(dests):
        raise ValueError("cut_episodes needs one destination per span")
    if reencode is not None and not fps:
        raise ValueError("re-encoding needs the frame rate")
    if any(b[0] < a[1] - tolerance_s for a, b in zip(spans, spans[1:])):
        raise ValueError("spans must be in order and must not overlap")
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        time_base = Fraction(stream.time_base)
        lows, highs = _ticks(spans, time_base, tolerance_s)
        offsets = [round(Fraction(start) / time_base) for start, _ in spans]
        reasons: dict[int, str] = {}
        frames: dict[int, int] = {}
        run, current = None, None
        try:
            for packet in container.demux(stream):
                if packet.dts is None and packet.pts is None:
                    continue  # flush packet
                if packet.pts is None or packet.dts is None:
                    raise DatasetError(Problem("a packet without PTS or DTS: cannot cut it", path=str(source)))
                found = bisect.bisect_right(lows, packet.pts) - 1
                episode = found if found >= 0 and packet.pts < highs[found] else None
                if episode != current and run is not None:
                    run.finish(time_base)
                    frames[current] = run.frames
                    run = None
                if episode is None or episode in reasons:
                    current = episode
                    continue
                if episode != current:
                    current = episode
                    if episode in frames:
                        _discard_written(dests[episode])
                        reasons[episode] = "its frames are interleaved with other frames in decode order"
                        continue
                    if not packet.is_keyframe:
                        reasons[episode] = "it does not start on a keyframe"
                        continue
                    offsets[episode] = min(offsets[episode], packet.pts)
                    run = _Run(dests[episode], stream, offsets[episode])
                if packet.pts < run.offset:
                    run.discard()
                    run = None
                    reasons[episode] = "a frame is presented before the episode's first keyframe (open GOP)"
                    continue
                run.mux(packet)
            if run is not None:
                run.finish(time_base)
                frames[current] = run.frames
                run = None
        finally:
            if run is not None:
                run.discard()
    for episode in range(len(spans)):
        if episode not in frames and episode not in reasons:
            reasons[episode] = "no frame of the file lies in its time range"
    cuts = []
    for episode, dest in enumerate(dests):
        reason = reasons.get(episode)
        if reason is None:
            cuts.append(EpisodeCut(frames[episode]))
        elif reencode is None or reason.startswith("no frame"):
            cuts.append(EpisodeCut(0, reason))
        else:
            rgb = _decoded(source, lows[episode], highs[episode], offsets[episode])
            cuts.append(EpisodeCut(encode_frames(rgb, dest, fps, reencode), reason))
    return cuts


def _ticks(spans: Sequence[tuple[float, float]], time_base: Fraction,
           tolerance_s: float) -> tuple[list[int], list[int]]:
    """Per span ``(from, to)`` (seconds), the half-open range of presentation times (time-base ticks) of its
    frames: ``[from - tolerance, to - tolerance)``."""
    tolerance = Fraction(tolerance_s)
    lows = [math.ceil((Fraction(start) - tolerance) / time_base) for start, _ in spans]
    highs = [math.ceil((Fraction(end) - tolerance) / time_base) for _, end in spans]
    return lows, highs


def span_bytes(source: str, spans: Sequence[tuple[float, float]], *, tolerance_s: float = 1e-4) -> list[int]:
    """The bytes of the packets presented in each span ``(from, to)`` of the video ``source`` (no decoding; spans
    in order, as :func:`cut_episodes` takes them): what each episode adds to a file it is copied into."""
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        lows, highs = _ticks(spans, Fraction(stream.time_base), tolerance_s)
        sizes = [0] * len(spans)
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            found = bisect.bisect_right(lows, packet.pts) - 1
            if found >= 0 and packet.pts < highs[found]:
                sizes[found] += packet.size
    return sizes


def _discard_written(dest: str) -> None:
    if os.path.exists(dest):
        os.remove(dest)


def _decoded(path: str, low: int, high: int, offset: int) -> Iterator[tuple[float, object]]:
    """``(time - offset, rgb)`` of the frames presented in ``[low, high)`` (time-base ticks), in order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        time_base = Fraction(stream.time_base)
        container.seek(low, backward=True, any_frame=False, stream=stream)
        for frame in container.decode(stream):
            if frame.pts is None or frame.pts < low:
                continue
            if frame.pts >= high:
                break
            yield float((frame.pts - offset) * time_base), frame.to_ndarray(format="rgb24")
