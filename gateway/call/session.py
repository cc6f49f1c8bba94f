"""CallSession: one call joined to one engine session, whatever carrier brought it.

The session converts between the carrier's 8 kHz G.711 and the engine's PCM rate, paces the
engine's speech out through :class:`~gateway.call.playout.Playout`, and carries out the engine's
decisions: a soft ``Hold`` ducks the bot a little while the engine looks at a sound; a
``Hold`` stops releasing the bot's audio at an exact sample (by default it also clears what the
carrier has buffered, so the bot is quiet within a network trip, and keeps the unheard audio
from the sample heard); a ``Release`` carries on from that sample; a ``Commit``
(or an ``Interrupt``, which is a hold and a commit at once) becomes a carrier ``clear`` plus
:meth:`EngineSession.played` with the position the caller heard; ``Hangup``/``Transfer`` go to
the carrier's call control once the speech before them has played.
A hold the engine leaves open past :data:`MAX_HOLD` is committed: the caller has been talking
that long, and the engine learns where it was cut.

It knows no carrier and does no I/O, in the aioquic way: a carrier feeds it (``receive_*``,
``engine_event``, ``handle_timer(now)``, ``clear_written(now)``) with the time passed in, and
reads what to do from :meth:`CallSession.commands_to_send` (frames, marks, clears, hang-up and
transfer, see :mod:`gateway.call.commands`) and when to call back from
:meth:`CallSession.next_deadline`. :mod:`gateway.call.runner` is the asyncio side. Per-frame
work is synchronous and allocation-light.
"""

from __future__ import annotations

import logging

from engine.base import (
    Audio,
    Commit,
    EngineEvent,
    EngineSession,
    Hangup,
    Hold,
    Interrupt,
    Metric,
    Release,
    Result,
    SendDtmf,
    Transcript,
    Transfer,
)
from gateway.audio.dtmf import dtmf_pcm
from gateway.audio.g711 import ULAW_SILENCE, ulaw_decode, ulaw_encode
from gateway.audio.resample import StreamResampler
from gateway.call.commands import (
    DTMF_CHARACTERS,
    MAX_DTMF_DIGITS,
    AfterSpeech,
    ClearAudio,
    Command,
    HangUp,
    SendDigits,
    SendFrame,
    SendMark,
    TransferCall,
)
from gateway.call.labels import AudioFormat, CallOutcome, Role
from gateway.call.ledger import CallLedger
from gateway.call.playout import Playout, Releasing
from gateway.call.recording import CallRecorder

log = logging.getLogger("overtalk.session")

CARRIER_RATE = 8000
FRAME_BYTES = 160  # 20 ms of 8 kHz G.711
#: A jump in the carrier's media timestamps up to this long is filled with silence, so the
#: engine's clock (the audio it is given) stays the call's clock; longer jumps are not audio
#: gaps but a broken peer, and are not filled.
MAX_GAP_FILL_MS = 2000
#: How long a Hangup/Transfer waits for the speech before it to finish playing.
MAX_DRAIN_BEFORE_ACTION = 30.0
#: A pause in the bot's playback shorter than this continues the same run on the timeline.
RUN_GAP = 0.2
#: A hold left open this long (seconds) is committed by the gateway.
MAX_HOLD = 3.0
#: Release the outbound resampler's tail this long before the carrier's buffer runs dry.
FLUSH_MARGIN = 0.040


class CallSession:
    """One call <-> one engine session, sans-I/O. See the module docstring.

    Inputs: :meth:`receive_audio`, :meth:`receive_mark`, :meth:`receive_dtmf`,
    :meth:`engine_event`, :meth:`handle_timer` and :meth:`clear_written`, each with the time
    it happened where time matters. Outputs: :meth:`commands_to_send` (read after every
    input) and :meth:`next_deadline` (when to call :meth:`handle_timer`).
    """

    def __init__(
        self,
        engine: EngineSession,
        ledger: CallLedger,
        *,
        origin: float,
        playout: Playout | None = None,
        recorder: CallRecorder | None = None,
        carrier_clock: bool = False,
    ) -> None:
        self.engine = engine
        self.ledger = ledger
        self.playout = playout or Playout()
        self.recorder = recorder
        #: The carrier's own media clock takes each frame as it transmits it
        #: (:meth:`pull_frame`); the session then sends no frames or marks and keeps no
        #: pacing timer (SIP's RTP clock: one pacer, and "heard" is what went on the wire).
        self.carrier_clock = carrier_clock
        #: Monotonic time the call started: the origin of the ledger's timeline.
        self.origin = origin
        # Playback runs for the timeline: a run ends when everything sent has played, and a gap
        # shorter than RUN_GAP before the next audio continues it (streamed speech arrives in
        # chunks, and a timeline entry per chunk would cost work per frame and say nothing).
        self._bot_playing = False
        self._bot_stopped_at: float | None = None
        rate = engine.sample_rate
        # An engine that speaks mu-law gets the carrier's bytes untouched, both ways.
        self._passthrough = engine.audio_format == AudioFormat.MULAW
        self._in_resampler = StreamResampler(CARRIER_RATE, rate)
        self._out_resampler = StreamResampler(rate, CARRIER_RATE)
        self._engine_bytes_per_ms = 8.0 if self._passthrough else rate * 2 / 1000.0
        # Inbound clock, from the carrier's media timestamps.
        self._next_in_ts = -1
        # Outbound timeline: ms of engine audio emitted, and where the 8 kHz stream starts.
        self._emitted_ms = 0.0
        self._out_base_ms = 0.0
        self._out_samples = 0
        self._pending = b""  # mu-law bytes short of a whole frame
        # The outbound resampler holds speech a clear threw away: reset it before the next
        # audio rather than on the clear's path (a new soxr stream costs a fifth of a ms).
        self._out_stale = False
        self._commands: list[Command] = []
        # Timers, as deadlines on the caller's monotonic clock: pacing, the open hold's limit,
        # and how long a hang-up or transfer waits for the speech before it.
        self._deadline: float | None = None
        self._hold_deadline: float | None = None
        self._action_deadline: float | None = None
        self._after_playout: list[AfterSpeech] = []
        self.closed = False
        # When the last clear was asked for, until the carrier reports it written.
        self._clear_requested_at: float | None = None

    # -- outputs -----------------------------------------------------------------------------

    def commands_to_send(self) -> list[Command]:
        """What the carrier must do, in order; each command is handed out once."""
        commands = self._commands
        if not commands:
            return commands
        self._commands = []
        return commands

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must next run, or None when nothing is timed."""
        if self.closed:
            return None
        soonest = self._deadline
        for deadline in (self._hold_deadline, self._action_deadline):
            if deadline is not None and (soonest is None or deadline < soonest):
                soonest = deadline
        return soonest

    def handle_timer(self, now: float) -> None:
        """Run whatever was due by ``now``: pacing, an expired hold, a drained wait."""
        if self.closed:
            return
        hold_deadline = self._hold_deadline
        if hold_deadline is not None and now >= hold_deadline:
            self._hold_deadline = None
            if self.playout.held:
                self.ledger.errors.append(f"hold left open {MAX_HOLD:.0f} s: committed")
                self._interrupt(now)
        action_deadline = self._action_deadline
        if action_deadline is not None and now >= action_deadline:
            self._release_actions()
        deadline = self._deadline
        if deadline is not None and now >= deadline:
            self.ledger.frame_lateness.observe(now - deadline)
            self._deadline = None
            self.pump(now)

    def clear_written(self, now: float) -> None:
        """The carrier has written the last clear asked for: its latency goes in the ledger."""
        requested = self._clear_requested_at
        if requested is not None:
            self.ledger.clear_latencies.append(now - requested)
            self._clear_requested_at = None

    # -- inbound: caller -> engine (per frame, synchronous) ----------------------------------

    def receive_audio(self, ulaw: bytes, timestamp_ms: int = -1) -> None:
        """Feed one chunk of caller audio (G.711 mu-law) to the engine."""
        ledger = self.ledger
        ledger.frames_in += 1
        if timestamp_ms >= 0:
            expected = self._next_in_ts
            if expected >= 0 and 20 <= timestamp_ms - expected <= MAX_GAP_FILL_MS:
                gap = timestamp_ms - expected
                ledger.gap_fill_seconds += gap / 1000.0
                self._feed(bytes([ULAW_SILENCE]) * (gap * 8))
            self._next_in_ts = timestamp_ms + len(ulaw) // 8
        self._feed(ulaw)

    def _feed(self, ulaw: bytes) -> None:
        self.ledger.audio_in_seconds += len(ulaw) / 8000.0
        if self.recorder is not None:
            self.recorder.caller(ulaw)
        if self._passthrough:
            self.engine.send_audio(ulaw)
            return
        pcm = self._in_resampler.process(ulaw_decode(ulaw))
        if pcm:
            self.engine.send_audio(pcm)

    def receive_dtmf(self, digit: str, now: float) -> None:
        self.ledger.dtmf_in += 1
        self.ledger.event(now - self.origin, "dtmf", digit)
        self.engine.dtmf(digit)

    def receive_mark(self, name: str, now: float) -> None:
        """A mark echo: update the ledger, and send more if playback made room."""
        playout = self.playout
        if playout.mark_echoed(name, now):
            self.ledger.mark(now - self.origin)
            self.pump(now)
            if playout.idle:
                if self._bot_playing:
                    self._bot_playing = False
                    self._bot_stopped_at = now
                self._release_actions()

    # -- outbound: engine -> caller ----------------------------------------------------------

    def engine_event(self, event: EngineEvent, now: float) -> None:
        """Act on one engine event; synchronous, so an Interrupt clears with no task hop."""
        match event:
            case Audio(pcm=pcm):
                self._emit(pcm, now)
            case Hold(soft=soft):
                self._hold(now, soft)
            case Release():
                self._release(now)
            case Commit() | Interrupt():
                self._interrupt(now)
            case Transcript(role=role, text=text, final=final, revises=revises):
                if final:
                    self._transcribe(role, text, revises, now)
            case Metric(name=name, value=value):
                self.ledger.metrics.setdefault(name, []).append(value)
            case Result(values=values):
                self.ledger.results = dict(values)
                self.ledger.event(
                    now - self.origin,
                    "results",
                    ", ".join(f"{k}={v}" for k, v in values.items()),
                )
            case SendDtmf(digits=digits):
                problem = _dtmf_problem(digits)
                if problem is not None:
                    self.ledger.errors.append(f"engine SendDtmf: {problem}")
                    return
                self._after_speech(SendDigits(digits.upper()), now)
            case Hangup():
                self._after_speech(HangUp(), now)
            case Transfer(target=target):
                self._after_speech(TransferCall(target), now)

    def play_dtmf(self, digits: str, now: float) -> None:
        """Play ``digits`` (as :class:`SendDigits` gave them) as tones in the bot's audio: for
        a carrier that cannot send DTMF events, or a call that did not agree them."""
        pcm = dtmf_pcm(digits, self.engine.sample_rate)
        self._emit(ulaw_encode(pcm) if self._passthrough else pcm, now)

    def engine_failed(self, reason: str) -> None:
        """The engine's stream broke: the call ends, and the ledger says why."""
        self.ledger.engine_errors += 1
        self.ledger.errors.append(f"engine failed: {reason}")

    def _transcribe(self, said_by: str, text: str, revises: bool, now: float) -> None:
        try:
            role = Role(said_by)
        except ValueError:  # an engine's bad line is dropped, the call carries on
            self.ledger.errors.append(f"transcript from unknown role {said_by[:20]!r}")
            return
        lines = self.ledger.transcript
        at = len(lines)
        if revises:  # in place of that side's last line, wherever the other side spoke since
            at = next((i for i in range(len(lines) - 1, -1, -1) if lines[i][0] == role), at)
        lines[at : at + 1] = [(role, text)]
        self.ledger.event(now - self.origin, f"said-{role}", text)

    def _emit(self, audio: bytes, now: float) -> None:
        if self._out_stale:
            self._out_resampler.reset()
            self._out_stale = False
        self._emitted_ms += len(audio) / self._engine_bytes_per_ms
        if self._passthrough:
            self._frame(audio)
        else:
            self._frame(ulaw_encode(self._out_resampler.process(audio)))
        self.pump(now)

    def _frame(self, ulaw: bytes) -> None:
        """Cut mu-law into 20 ms frames, each tagged with where it ends on the timeline."""
        if self._pending:
            ulaw = self._pending + ulaw
        usable = len(ulaw) - len(ulaw) % FRAME_BYTES
        playout = self.playout
        samples = self._out_samples
        base = self._out_base_ms
        for start in range(0, usable, FRAME_BYTES):
            samples += FRAME_BYTES
            playout.enqueue(ulaw[start : start + FRAME_BYTES], base + samples / 8.0)
        self._out_samples = samples
        self._pending = ulaw[usable:]

    def _flush_tail(self) -> None:
        """The engine paused: release what the resampler and framer hold, padded to a frame."""
        tail = ulaw_encode(self._out_resampler.flush())
        if tail or self._pending:
            tail = self._pending + tail
            self._pending = b""
            pad = -len(tail) % FRAME_BYTES
            self._frame(tail + bytes([ULAW_SILENCE]) * pad)
            # Padding is silence the engine never emitted: keep the timeline on its own clock.
            self._out_base_ms -= pad / 8.0

    def _hold(self, now: float, soft: bool = False) -> None:
        """Stop releasing the bot's audio (or, ``soft``, duck it a little); what the carrier
        has plays out. A soft hold during a deep one lifts it back to the soft level."""
        playout = self.playout
        if self.closed:
            return
        if soft and playout.held:
            self._soften(now)
            return
        if playout.held or (soft and playout.softly_held):
            return
        opens = not playout.softly_held  # a deep hold after a soft one is the same hold
        held_ms = playout.hold(now, soft)
        if held_ms is None:
            return  # soft holds are off: the bot plays on until a deep hold or a commit
        if not soft and playout.hold_clears:  # quiet within a network trip; the rest is kept
            self._clear_carrier(now)
        self._deadline = None
        ledger = self.ledger
        if opens:
            ledger.holds += 1
            ledger.soft_holds += soft
            self._hold_deadline = now + MAX_HOLD
        ledger.event(now - self.origin, "duck" if soft else "hold", f"{held_ms:.0f}")
        self.pump(now)  # a ducking hold keeps sending, attenuated

    def _soften(self, now: float) -> None:
        """The deep hold is lifted back to the soft level: the bot carries on, ducked."""
        spell = self.playout.soften(now)
        if spell is None:
            return
        if not self.playout.softly_held:  # soft holds are off: that was the release
            self._hold_deadline = None
            self.ledger.releases += 1
        self._record_hold(spell, released=True)
        self.ledger.event(now - self.origin, "unhold", f"{spell.gap_s * 1000:.0f}")
        self.pump(now)

    def _clear_carrier(self, now: float) -> None:
        if self.recorder is not None:
            self.recorder.cut_bot(now)
        self._commands.append(ClearAudio())
        self._clear_requested_at = now

    def _release(self, now: float) -> None:
        """Carry on from the exact sample held at: the queued frames go out as they were."""
        releasing = self.playout.release(now)
        if releasing is None:
            return  # no hold open (already committed): nothing to carry on
        self._hold_deadline = None
        ledger = self.ledger
        ledger.releases += 1
        self._record_hold(releasing, released=True)
        ledger.event(now - self.origin, "release", f"{releasing.gap_s * 1000:.0f}")
        self.pump(now)
        if self.playout.idle:
            self._release_actions()

    def _record_hold(self, hold: Releasing, *, released: bool) -> None:
        """How one hold sounded to the caller: each duck's depth and length (soft first, then
        deep), and the silence heard before a release (the hold gap)."""
        ledger = self.ledger
        playout = self.playout
        if hold.soft_s > 0 and playout.soft_db is not None:
            ledger.ducks.append((playout.soft_db, round(hold.soft_s, 4)))
        if not hold.deep:
            return
        ledger.deep_holds += 1
        if playout.duck_db is not None:
            ledger.ducks.append((playout.duck_db, round(hold.ducked_s, 4)))
        elif released:
            ledger.hold_gaps.append(round(hold.gap_s, 4))

    def _interrupt(self, now: float) -> None:
        playout = self.playout
        # The carrier's buffer is empty already after a deep hold that cleared it.
        cleared = playout.held and playout.hold_clears
        clearing = playout.clear(now)
        if clearing.hold is not None:
            self._hold_deadline = None
            self.ledger.commits += 1
            self._record_hold(clearing.hold, released=False)
        if not cleared:
            self._clear_carrier(now)
        self._bot_playing = False
        self._bot_stopped_at = None  # the clear ends the run on the timeline
        self._out_stale = True
        self._pending = b""
        self._out_base_ms = self._emitted_ms
        self._out_samples = 0
        self._deadline = None
        ledger = self.ledger
        ledger.clears += 1
        ledger.discarded_frames += clearing.discarded_frames
        ledger.heard_at_clear.append(clearing.heard_ms)
        ledger.event(now - self.origin, "clear", f"{clearing.heard_ms:.0f}")
        self.engine.played(int(clearing.heard_ms))
        self._release_actions()  # a hangup or transfer waited for speech that is now cut

    # -- pacing ------------------------------------------------------------------------------

    def pump(self, now: float) -> None:
        """Queue every frame and mark due by ``now``; set the pacing deadline for the next."""
        if self.closed or self.carrier_clock:
            return  # the carrier's clock takes each frame itself (pull_frame)
        playout = self.playout
        if playout.silent_hold:
            self._deadline = None  # nothing goes out; the tail stays with the rest of the speech
            return
        play_at = max(playout.play_end, now)  # when the first frame polled now starts playing
        items = playout.poll(now)
        deadline = playout.next_deadline()
        if deadline is None and (
            self._pending or (self._out_resampler.pending and not self._out_stale)
        ):
            # Queue empty but the resampler and framer hold the end of the speech. Release it
            # just before the carrier runs dry: sooner would cut a stream the engine is still
            # feeding (a restart mid-utterance clicks), later would leave the tail unplayed.
            flush_at = playout.play_end - FLUSH_MARGIN
            if now >= flush_at:
                self._flush_tail()
                items.extend(playout.poll(now))
                deadline = playout.next_deadline()
            else:
                deadline = flush_at
        if items:
            if not self._bot_playing:
                self._bot_playing = True
                stopped = self._bot_stopped_at
                if stopped is None or play_at - stopped > RUN_GAP:
                    if stopped is not None:
                        self.ledger.event(stopped - self.origin, "bot-stop")
                    self.ledger.event(play_at - self.origin, "bot-start")
                self._bot_stopped_at = None
            commands = self._commands
            recorder = self.recorder
            for item in items:
                if type(item) is bytes:
                    commands.append(SendFrame(item))
                    if recorder is not None:
                        recorder.bot(play_at, item)
                        play_at += len(item) / 8000.0
                else:
                    commands.append(SendMark(item))  # type: ignore[arg-type]
        self._deadline = deadline

    def pull_frame(self, now: float) -> bytes | None:
        """The carrier's media clock transmits a frame at ``now``: the bot's next one, or None
        for silence (see ``carrier_clock``). What it returns goes on the wire now, so it counts
        as heard; when the bot's speech has all gone out, a waiting hang-up, transfer or DTMF
        is released."""
        if self.closed:
            return None
        playout = self.playout
        if playout.held and playout.duck_db is None:
            return None  # the tail stays with the rest of the held speech
        frame = playout.pull(now)
        if frame is None and (
            self._pending or (self._out_resampler.pending and not self._out_stale)
        ):
            # The queue ran dry with the end of the speech in the resampler and framer: the
            # carrier needs it now (sooner would cut a stream the engine is still feeding).
            self._flush_tail()
            frame = playout.pull(now)
        if frame is None:
            if self._bot_playing:
                self._bot_playing = False
                self._bot_stopped_at = now
            if self._after_playout:
                self._release_actions()
            return None
        if not self._bot_playing:
            self._bot_playing = True
            stopped = self._bot_stopped_at
            if stopped is None or now - stopped > RUN_GAP:
                if stopped is not None:
                    self.ledger.event(stopped - self.origin, "bot-stop")
                self.ledger.event(now - self.origin, "bot-start")
            self._bot_stopped_at = None
        if self.recorder is not None:
            self.recorder.bot(now, frame)
        return frame

    # -- control actions after playout -------------------------------------------------------

    def end_call(self, reason: str, outcome: CallOutcome = CallOutcome.LIMIT) -> None:
        """Hang up now, whatever is playing (a call-length limit, a drain deadline)."""
        if self.closed:
            return
        log.info("= ending call %s: %s", self.ledger.call_id, reason)
        self.ledger.end_reason = reason
        self.ledger.outcome = outcome
        self._after_playout.insert(0, HangUp())
        self._release_actions()

    def _after_speech(self, action: AfterSpeech, now: float) -> None:
        self._after_playout.append(action)
        self.pump(now)
        if self.playout.idle:
            self._release_actions()
        elif self._action_deadline is None:
            self._action_deadline = now + MAX_DRAIN_BEFORE_ACTION

    def _release_actions(self) -> None:
        """Hand the waiting hang-up, transfer or DTMF to the carrier, in the order they came."""
        if not self._after_playout or self.closed:
            return
        self._action_deadline = None
        for action in self._after_playout:
            match action:
                case HangUp():
                    log.info("= engine hangs up call %s", self.ledger.call_id)
                    # Settled first: closing the stream to hang up reads like the caller going.
                    self.ledger.outcome = self.ledger.outcome or CallOutcome.COMPLETED
                case TransferCall(target=target):
                    log.info("= engine transfers call %s to %s", self.ledger.call_id, target)
                case SendDigits(digits=digits):
                    log.info("= engine sends DTMF %s on call %s", digits, self.ledger.call_id)
            self._commands.append(action)
        self._after_playout.clear()

    # -- lifetime ----------------------------------------------------------------------------

    def close(self, reason: str, now: float, wall: float) -> None:
        """End the call's media: no more commands or timers; settle the ledger.

        ``now`` is the monotonic clock, ``wall`` seconds since the epoch (the record's end).
        """
        if self.closed:
            return
        self.closed = True
        self._deadline = self._hold_deadline = self._action_deadline = None
        ledger = self.ledger
        playout = self.playout
        if self._bot_playing:
            ledger.event(min(now, playout.play_end) - self.origin, "bot-stop")
        elif self._bot_stopped_at is not None:
            ledger.event(self._bot_stopped_at - self.origin, "bot-stop")
        if playout.held or playout.softly_held:  # ended inside a hold: neither way
            ledger.event(now - self.origin, "hold-open-at-end")
        ledger.event(now - self.origin, "end", reason)
        ledger.end_reason = ledger.end_reason or reason
        ledger.ended_at = wall
        ledger.frames_out = playout.frames_sent
        ledger.audio_out_seconds = playout.frames_sent * 0.02
        ledger.marks_sent = playout.marks_sent
        ledger.marks_echoed = playout.marks_echoed
        ledger.stale_marks = playout.stale_marks


def _dtmf_problem(digits: str) -> str | None:
    """Why an engine's DTMF string cannot be sent, or None when it can."""
    if len(digits) > MAX_DTMF_DIGITS:
        return f"{len(digits)} DTMF digits, more than {MAX_DTMF_DIGITS}"
    bad = next((d for d in digits.upper() if d not in DTMF_CHARACTERS), None)
    if bad is not None:
        return f"not a DTMF digit: {bad!r}"
    return None if digits else "no DTMF digits"
