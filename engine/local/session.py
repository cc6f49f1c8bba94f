"""One call of the local engine: audio in, turn-taking, replies out.

Everything here runs on the event loop's thread and only does bookkeeping; the models run on
the engine's workers (:mod:`engine.local.workers`). Per 20 ms frame, :meth:`send_audio`
appends to a buffer, and every 32 ms hands a window to the VAD worker. Results come back as
callbacks that drive the pure :class:`~engine.local.controller.TurnController`; its decisions
become engine events (``Hold``, ``Commit``, ``Release``, ``Transcript``, ``Metric``),
recognition requests, and replies from the responder (a scripted flow or a chat model), spoken
phrase by phrase.

Interruptions: a sound over the bot opens a soft hold (the gateway ducks the bot a little; it
plays on, so the echo reference and the bot's timeline stand), which goes deep once the sound
sounds like speech (the gateway stops the bot at an exact sample; the echo reference is cut, and
what was to play after moves by the deep spell's length when playback resumes); the controller
judges it on its evidence and the session releases (the bot carries on from that sample) or
commits (the gateway clears and reports what was heard). A commit keeps the cut turn
until the caller's words are judged: if they turn out to be a backchannel or not words at all,
the bot carries on from the heard position with the audio it already has (fail safe: a wrong
commit costs a pause, not the bot's place).

Clocks: the session's time is caller samples received (16 kHz). Bot audio is placed on that
timeline where the caller should hear it, assuming the gateway plays it at 1x from when it is
emitted (behind anything still playing): the controller uses that to know when the bot is
audible, and the echo check to know what might come back.

Metrics (``Metric`` events, milliseconds on the caller's timeline unless named ``_s``):
``turn.decision_ms`` (caller's end of speech -> end of turn decided), ``turn.first_audio_ms``
(-> first bot audio emitted, an acknowledgement or the answer), ``turn.answer_audio_ms`` (->
first audio of the answer itself), ``turn.speech_end_s``, ``barge_in.detect_ms`` (speech onset
-> Hold), ``barge_in.released`` / ``barge_in.confirmed`` / ``barge_in.carried_on`` (counts: a
hold released, a hold committed, a commit taken back), ``barge_in.hold_ms`` (hold -> decision,
caller's clock), ``asr.ms`` (recognition time per request, wall clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from engine.base import (
    Audio,
    Commit,
    EngineSession,
    Hangup,
    Hold,
    Interrupt,
    Metric,
    Release,
    Result,
    Transcript,
    Transfer,
)
from engine.local import controller as ctl
from engine.local import nlu
from engine.local.asr import AsrRequest, Transcription
from engine.local.chat import ChatError
from engine.local.echo import EchoMonitor
from engine.local.flow import Ending, Reply
from engine.local.tts import PhraseCache, Synthesizer, split_phrases
from engine.local.vad import RATE, WINDOW
from engine.local.workers import AsrWorker, TtsWorker, VadResult, VadStream, VadWorker

log = logging.getLogger("overtalk.engine.local")

__all__ = ["LocalSession", "Responder", "Workers"]

_HISTORY = 1 << 19  # caller audio kept for recognition: 32 s at 16 kHz
#: The most caller audio one recognition request covers: Whisper reads 30 s at most, and a longer
#: request fails (with every other call's request batched with it). A segment held open that
#: long by a steady noise is recognised by its latest 28 s.
_MAX_RECOGNISED = 28 * 16000
_APOLOGY = "Sorry, I'm having trouble right now."
#: Whisper is sure of its words below this no-speech probability and above this mean
#: log-probability (sentences measure under 0.3 and above -0.6 on the shared recordings,
#: noise 0.4-0.9 and -1.0 to -3.4: see asr.Transcription).
_SURE_NO_SPEECH = 0.5
_SURE_LOGPROB = -1.0


class Responder(Protocol):
    """The bot's brain: a scripted flow or a chat model (see flow.FlowRunner, chat)."""

    @property
    def acknowledgements(self) -> tuple[str, ...]: ...

    def start(self) -> Reply: ...

    def answer(self, text: str, *, question_heard: bool = True) -> Reply: ...

    def dtmf(self, digit: str) -> Reply | None: ...

    def no_input(self) -> Reply: ...

    def heard(self, said: str, heard: str) -> None: ...

    def snapshot(self) -> object: ...

    def restore(self, snapshot: object) -> None: ...

    def results(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Workers:
    """What a session shares with every other call of its engine."""

    vad: VadWorker
    asr: AsrWorker
    tts: TtsWorker
    cache: PhraseCache


@dataclass(frozen=True, slots=True)
class _Answered:
    """The last turn answered: enough to take the answer back if the caller was not done."""

    snapshot: object
    text: str
    speech_end: int


@dataclass(slots=True)
class _Phrase:
    text: str
    ack: bool = False
    pcm: bytes | None = None
    ready: bool = False
    #: Output-timeline span (ms) once emitted, and the caller-timeline span it plays in.
    out_start: float = 0.0
    out_end: float = 0.0
    play_start: int = 0
    play_end: int = 0


@dataclass
class _BotTurn:
    """What the bot says in one turn, in order, then how the call goes on."""

    reply: Reply
    phrases: list[_Phrase] = field(default_factory=list)
    emitted: int = 0
    streaming: bool = False
    suspended: bool = False
    finished: bool = False  # everything emitted, ending action sent
    speech_end: int | None = None  # the caller's end of speech this turn answers
    answered_at: int | None = None  # first answer audio emitted (caller samples)

    @property
    def text(self) -> str:
        return " ".join(p.text for p in self.phrases if not p.ack)


class LocalSession(EngineSession):
    """See the module docstring."""

    def __init__(
        self,
        call_id: str,
        responder: Responder,
        workers: Workers,
        synthesizer: Synthesizer,
        *,
        turn_config: ctl.TurnConfig | None = None,
        echo: bool = True,
    ) -> None:
        super().__init__(RATE)
        self.call_id = call_id
        self.responder = responder
        self.workers = workers
        self.synth = synthesizer
        self.controller = ctl.TurnController(turn_config or ctl.TurnConfig())
        self._stream = VadStream(self._on_vad, EchoMonitor(RATE) if echo else None)
        self._pending = bytearray()
        self._history = np.zeros(_HISTORY, np.float32)
        self._samples = 0  # caller samples received: the session's clock
        self._emitted_ms = 0.0  # output timeline
        self._play_end = 0  # caller sample when all emitted audio will have played
        self._turn: _BotTurn | None = None
        self._reply: Reply = Reply()
        self._acks = itertools.cycle(responder.acknowledgements or ("Okay.",))
        self._stream_task: asyncio.Task[None] | None = None
        self._cut_turn: _BotTurn | None = None
        self._heard_ms: float | None = None
        # The open hold: caller sample it began at (None: no hold open), and where its deep
        # spell began (None: soft now, the bot still playing, ducked).
        self._held_at: int | None = None
        self._deep_at: int | None = None
        self._last_activity = 0  # caller sample of the last caller speech or bot audio
        self._answered: _Answered | None = None
        self._results: Mapping[str, str] = {}
        self._continuing: int | None = None  # segment that continues the answered turn
        self._closed = False
        self.ended = False
        #: Every decision of the controller, in order (for tests and debugging).
        self.decisions: list[ctl.Decision] = []

    # -- inputs from the gateway (hot path: bookkeeping only) --------------------------------

    def start(self) -> None:
        """Speak the opening lines (the flow's greeting and first question)."""
        self._speak(self.responder.start(), speech_end=None)

    def send_audio(self, pcm: bytes) -> None:
        if self._closed:
            return
        buf = self._pending
        buf += pcm
        whole = len(buf) // (2 * WINDOW)
        if not whole:
            return
        n = whole * WINDOW
        windows = np.frombuffer(bytes(buf[: 2 * n]), dtype="<i2").astype(np.float32) / 32768.0
        del buf[: 2 * n]
        end = self._samples + n
        i = self._samples % _HISTORY
        first = min(n, _HISTORY - i)
        self._history[i : i + first] = windows[:first]
        if first < n:
            self._history[: n - first] = windows[first:]
        self._samples = end
        self.workers.vad.submit(self._stream, windows.reshape(whole, WINDOW), end)

    def dtmf(self, digit: str) -> None:
        if self._closed or self.ended:
            return
        reply = self.responder.dtmf(digit)
        if reply is None:
            return
        self.channel.put(Transcript("caller", f"[{digit}]"))
        if self._bot_audible() or self._held_at is not None:
            self._interrupt_now()
        self._speak(reply, speech_end=None)

    def played(self, ms: int) -> None:
        """The caller heard the output timeline up to ``ms`` before the last clear."""
        self._heard_ms = float(ms)

    async def close(self) -> None:
        self._closed = True
        self._stream.closed = True
        if self._stream_task is not None:
            self._stream_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._stream_task
        self.channel.close()

    # -- VAD results -> controller -----------------------------------------------------------

    def _on_vad(self, results: list[VadResult]) -> None:
        if self._closed:
            return
        if not self.ended:  # once the call is ending, the goodbye plays out whatever is said
            controller = self.controller
            for r in results:
                for decision in controller.window(r.end, r.prob, r.echo_db, r.level_db):
                    self._act(decision)
        self._tick(results[-1].end)

    def _tick(self, t: int) -> None:
        """Per-window housekeeping: finished bot turns, and the caller's silence."""
        turn = self._turn
        if turn is not None and turn.finished and t >= self._play_end and not turn.suspended:
            self._complete_turn(turn)
        if self.controller.in_utterance:
            self._last_activity = t
            return
        wait = self._reply.no_input_after
        if (
            wait is not None
            and not self.ended
            and self._turn is None
            and t - max(self._last_activity, self._play_end) >= wait * RATE
        ):
            self._last_activity = t
            self._speak(self.responder.no_input(), speech_end=None)

    def _act(self, decision: ctl.Decision) -> None:
        self.decisions.append(decision)
        log.debug("= call %s at %.2f s: %s", self.call_id, self._samples / RATE, decision)
        match decision:
            case ctl.SpeechStarted(segment=segment, onset=onset, barge_in=barge_in):
                self._last_activity = onset
                answered = self._answered
                window = self.controller.config.samples(self.controller.config.continuation_ms)
                if barge_in and answered is not None and onset - answered.speech_end <= window:
                    self._continuing = segment
            case ctl.Transcribe(segment=segment, start=start, end=end, primed=primed):
                self._transcribe(segment, start, end, primed)
            case ctl.Partial(text=text):
                self.channel.put(Transcript("caller", text, final=False))
            case ctl.Interrupt(onset=onset, at=at):
                self._hold()
                self.channel.put(Metric("barge_in.detect_ms", (at - onset) / 16.0))
            case ctl.Deepen():
                self._deepen()
            case ctl.Soften():
                self._soften()
            case ctl.InterruptConfirmed():
                self._commit()
            case ctl.Resume(reason=reason, text=text):
                self._continuing = None
                self._release(reason, text)
            case ctl.Backchannel(text=text) | ctl.Discard(text=text):
                if text:
                    self.channel.put(Transcript("caller", text, final=False))
                self._carry_on()
            case ctl.EndOfTurn():
                self._end_of_turn(decision)

    # -- recognition -------------------------------------------------------------------------

    def _transcribe(self, segment: int, start: int, end: int, primed: bool) -> None:
        start = max(start, end - _MAX_RECOGNISED, 0)
        audio = self._read_history(start, end)
        prompt = self._reply.question
        request = AsrRequest(audio, prompt, primed)

        def done(result: Transcription | None, seconds: float) -> None:
            if self._closed:
                return
            self.channel.put(Metric("asr.ms", seconds * 1000.0))
            heard = result or Transcription("")
            sure = heard.no_speech < _SURE_NO_SPEECH and heard.logprob > _SURE_LOGPROB
            for decision in self.controller.transcript(
                segment, end, heard.text, heard.doubtful, sure, heard.primed
            ):
                self._act(decision)

        self.workers.asr.submit(request, done)

    def _read_history(self, start: int, end: int) -> np.ndarray:
        n = end - start
        i = start % _HISTORY
        first = min(n, _HISTORY - i)
        if first == n:
            return self._history[i : i + n].copy()
        return np.concatenate((self._history[i:], self._history[: n - first]))

    # -- turns -------------------------------------------------------------------------------

    def _end_of_turn(self, eot: ctl.EndOfTurn) -> None:
        self._last_activity = eot.at
        # The caller had only paused: the answer is taken back and it all reads as one.
        taken_back = self._answered if self._continuing == eot.segment else None
        text = nlu.join_continuation(taken_back.text, eot.text) if taken_back else eot.text
        self.channel.put(Transcript("caller", text, final=True, revises=taken_back is not None))
        self.channel.put(Metric("turn.speech_end_s", eot.speech_end / RATE))
        self.channel.put(Metric("turn.decision_ms", (eot.at - eot.speech_end) / 16.0))
        if self.ended:
            return
        turn = self._turn
        if turn is not None and (not turn.finished or turn is self._cut_turn):
            # The caller answered over the bot's turn (an interruption that stood): drop it.
            self._drop_turn(turn)
        if taken_back is not None:
            self.responder.restore(taken_back.snapshot)
            self._cut_turn = None
        self._continuing = None
        heard_question = self._question_heard()
        self._answered = _Answered(self.responder.snapshot(), text, eot.speech_end)
        reply = self.responder.answer(text, question_heard=heard_question)
        self._speak(reply, speech_end=eot.speech_end)

    def _question_heard(self) -> bool:
        """Whether the caller heard the last question before answering (or cut it off)."""
        cut = self._cut_turn
        if cut is None or not cut.reply.question:
            return True
        total = len(nlu.words(cut.text))
        question = len(nlu.words(cut.reply.question))
        return len(nlu.words(self._heard_text(cut))) >= total - question // 2

    def _speak(self, reply: Reply, *, speech_end: int | None) -> None:
        """Start a bot turn: phrases rendered (cache, else the TTS worker) and emitted in order."""
        results = self.responder.results()
        if results != self._results:  # an answer settled something, or was taken back
            self._results = results
            self.channel.put(Result(results))
        self._reply = reply
        self._cut_turn = None
        self.controller.expectation = reply.expect
        turn = _BotTurn(reply, speech_end=speech_end)
        self._turn = turn
        texts = [p for line in reply.lines for p in split_phrases(line)]
        cache, voice = self.workers.cache, self.synth.name
        first_cached = bool(texts) and cache.get(voice, texts[0]) is not None
        if speech_end is not None and not first_cached and (texts or reply.more is not None):
            ack = next(self._acks)
            pcm = cache.get(voice, ack)
            if pcm is not None:
                turn.phrases.append(_Phrase(ack, ack=True, pcm=pcm, ready=True))
        for text in texts:
            self._add_phrase(turn, text)
        if reply.more is not None:
            turn.streaming = True
            self._stream_task = asyncio.get_running_loop().create_task(self._follow(turn))
        self._pump()

    def _add_phrase(self, turn: _BotTurn, text: str) -> None:
        phrase = _Phrase(text)
        turn.phrases.append(phrase)
        cache, voice = self.workers.cache, self.synth.name
        pcm = cache.get(voice, text)
        if pcm is not None:
            phrase.pcm, phrase.ready = pcm, True
            return

        def done(pcm: bytes | None) -> None:
            if pcm:
                cache.put(voice, text, pcm)
            phrase.pcm, phrase.ready = pcm, True
            if self._turn is turn and not self._closed:
                self._pump()

        self.workers.tts.submit(self.synth, text, done)

    async def _follow(self, turn: _BotTurn) -> None:
        """Speak a streamed reply sentence by sentence as its text arrives."""
        assert turn.reply.more is not None
        buffer = ""
        try:
            async for piece in turn.reply.more:
                if self._turn is not turn:
                    return
                if isinstance(piece, Ending):  # the model ended the call: after its words
                    turn.reply = replace(turn.reply, hangup=piece.hangup, transfer=piece.transfer)
                    continue
                buffer += piece
                phrases = split_phrases(buffer)
                # All but the last are whole; the last may still grow.
                if len(phrases) > 1 or buffer.rstrip().endswith((".", "!", "?")):
                    done = phrases if buffer.rstrip().endswith((".", "!", "?")) else phrases[:-1]
                    for text in done:
                        self._add_phrase(turn, text)
                    buffer = "" if done is phrases else phrases[-1]
                    self._pump()
            if buffer.strip() and self._turn is turn:
                self._add_phrase(turn, buffer.strip())
        except ChatError as exc:
            log.warning("x call %s: %s", self.call_id, exc)
            if self._turn is turn:
                self._add_phrase(turn, _APOLOGY)
        finally:
            turn.streaming = False
            if self._turn is turn and not self._closed:
                self._pump()

    def _pump(self) -> None:
        """Emit every ready phrase, in order; after the last, the turn's ending."""
        turn = self._turn
        if turn is None or turn.suspended or turn.finished or self._closed:
            return
        while turn.emitted < len(turn.phrases) and turn.phrases[turn.emitted].ready:
            phrase = turn.phrases[turn.emitted]
            turn.emitted += 1
            if phrase.pcm:
                self._emit(turn, phrase)
        if turn.emitted == len(turn.phrases) and not turn.streaming:
            turn.finished = True
            reply = turn.reply
            if reply.ends_call:
                # The gateway plays all of it before ending the call: the words are final now,
                # and the stream may close before this session sees them played.
                self._complete_turn(turn)
            if reply.hangup:
                self.ended = True
                self.channel.put(Hangup("flow finished"))
            elif reply.transfer is not None:
                self.ended = True
                self.channel.put(Transfer(reply.transfer))

    def _emit(self, turn: _BotTurn, phrase: _Phrase) -> None:
        pcm = phrase.pcm
        assert pcm is not None
        now = self._samples
        samples = len(pcm) // 2
        phrase.out_start = self._emitted_ms
        self._emitted_ms += samples / 16.0
        phrase.out_end = self._emitted_ms
        phrase.play_start = max(now, self._play_end)
        phrase.play_end = phrase.play_start + samples
        self._play_end = phrase.play_end
        self.controller.bot_audible_until(self._play_end)
        audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        self.workers.vad.add_reference(self._stream, audio, phrase.play_start)
        self.channel.put(Audio(pcm))
        self.channel.put(Transcript("bot", phrase.text, final=False))
        if turn.speech_end is not None:
            if turn.emitted == 1:
                self.channel.put(Metric("turn.first_audio_ms", (now - turn.speech_end) / 16.0))
            if not phrase.ack and turn.answered_at is None:
                turn.answered_at = now
                self.channel.put(Metric("turn.answer_audio_ms", (now - turn.speech_end) / 16.0))

    # -- interruptions -----------------------------------------------------------------------

    def _bot_audible(self) -> bool:
        return self._samples < self._play_end

    def _hold(self) -> None:
        """Open a soft hold: the gateway ducks the bot a little (it plays on, so its echo
        reference and timeline stand) while the sound is judged; no new phrase is emitted."""
        turn = self._turn
        self._heard_ms = None
        self._held_at = self._samples
        self._deep_at = None
        self.channel.put(Hold(soft=True))
        if turn is not None:
            turn.suspended = True
            self._cut_turn = turn

    def _deepen(self) -> None:
        """The held sound looks like speech: the gateway stops the bot at an exact sample."""
        if self._held_at is None or self._deep_at is not None:
            return
        self._deep_at = self._samples
        self.channel.put(Hold())
        self.controller.bot_stopped(self._samples)
        self._play_end = min(self._play_end, self._samples)
        self.workers.vad.cut_reference(self._stream, self._samples)

    def _undeepen(self) -> None:
        """Playback carries on from the deep hold's sample: what was to play after it now
        plays from here, so move it (and its echo reference) by the deep spell's length."""
        deep_at = self._deep_at
        if deep_at is None:
            return
        self._deep_at = None
        turn = self._cut_turn
        now = self._samples
        if turn is not None and self._turn is turn:
            shift = now - deep_at
            for phrase in turn.phrases[: turn.emitted]:
                if phrase.play_end <= deep_at or not phrase.pcm:
                    continue
                skip = max(0, deep_at - phrase.play_start)
                phrase.play_start += shift
                phrase.play_end += shift
                rest = np.frombuffer(phrase.pcm, dtype="<i2")[skip:].astype(np.float32) / 32768.0
                self.workers.vad.add_reference(self._stream, rest, phrase.play_start + skip)
                self._play_end = max(self._play_end, phrase.play_end)
        self.controller.bot_audible_until(self._play_end)

    def _soften(self) -> None:
        """The sound stopped while deep: back to the soft level until it is judged."""
        if self._deep_at is None:
            return
        self._undeepen()
        self.channel.put(Hold(soft=True))

    def _interrupt_now(self) -> None:
        """A turn beyond doubt (a key press): hold and commit at once, drop the bot's turn."""
        if self._held_at is None:
            self._hold()
        self._held_at = self._deep_at = None
        self.channel.put(Interrupt())
        turn = self._cut_turn
        if turn is not None and self._turn is turn:
            self._drop_turn(turn)

    def _commit(self) -> None:
        """The held sound is a turn: the gateway clears and reports the heard position. The
        cut turn stays until the words are judged (see :meth:`_carry_on`)."""
        self.channel.put(Metric("barge_in.confirmed", 1))
        if self._held_at is None:  # released, and the words that followed take the floor
            self._hold()
        assert self._held_at is not None
        self.channel.put(Metric("barge_in.hold_ms", (self._samples - self._held_at) / 16.0))
        self._held_at = self._deep_at = None
        self.channel.put(Commit())

    def _drop_turn(self, turn: _BotTurn) -> None:
        """The caller will not hear the rest: record what they did hear, forget the rest."""
        if self._stream_task is not None and not self._stream_task.done():
            self._stream_task.cancel()
        heard = self._heard_text(turn)
        said = turn.text
        self.responder.heard(said, heard)
        if heard:
            self.channel.put(Transcript("bot", heard + " ...", final=True))
        reply = turn.reply
        if reply.ends_call and not turn.finished:
            # The caller cut into the goodbye: the call still ends (the flow has finished).
            self.ended = True
            self.channel.put(
                Hangup("flow finished") if reply.hangup else Transfer(reply.transfer or "")
            )
        self._turn = None

    def _release(self, reason: str, text: str) -> None:
        """A false alarm inside the hold: the gateway carries on from the held sample."""
        self.channel.put(Metric("barge_in.released", 1))
        held_at = self._held_at
        if held_at is None:  # committed already: the words decide (see _carry_on)
            self._carry_on()
            return
        self._undeepen()
        self._held_at = None
        self.channel.put(Metric("barge_in.hold_ms", (self._samples - held_at) / 16.0))
        self.channel.put(Release())
        turn = self._cut_turn
        self._cut_turn = None
        if turn is not None and self._turn is turn:
            turn.suspended = False
        self.controller.bot_audible_until(self._play_end)
        log.debug("= call %s: released after %s %r", self.call_id, reason, text)
        self._pump()

    def _carry_on(self) -> None:
        """After a commit, the sound proved no turn: the bot says again what the caller did not
        hear, from the heard position, with the audio it has (no re-synthesis)."""
        turn = self._cut_turn
        if turn is None or self._turn is not turn or self._held_at is not None:
            return
        self._cut_turn = None
        self.channel.put(Metric("barge_in.carried_on", 1))
        heard = self._heard_ms if self._heard_ms is not None else self._emitted_ms
        for k, phrase in enumerate(turn.phrases[: turn.emitted]):
            if phrase.pcm and phrase.out_end > heard:
                skip = 2 * max(0, int((heard - phrase.out_start) * 16))
                turn.phrases[k] = replace(phrase, pcm=phrase.pcm[skip:])
                turn.emitted = k
                turn.finished = False
                break
        turn.suspended = False
        self._pump()

    def _heard_text(self, turn: _BotTurn) -> str:
        """The words of ``turn`` the caller heard, by the position reported at the clear."""
        heard_ms = self._heard_ms if self._heard_ms is not None else self._emitted_ms
        words: list[str] = []
        for phrase in turn.phrases[: turn.emitted]:
            if phrase.ack or not phrase.pcm:
                continue
            if heard_ms >= phrase.out_end:
                words.extend(phrase.text.split())
            elif heard_ms > phrase.out_start:
                share = (heard_ms - phrase.out_start) / max(1.0, phrase.out_end - phrase.out_start)
                ws = phrase.text.split()
                words.extend(ws[: int(len(ws) * share)])
                break
            else:
                break
        return " ".join(words)

    def _complete_turn(self, turn: _BotTurn) -> None:
        """The bot's turn has played out: its words are final."""
        if turn.text:
            self.channel.put(Transcript("bot", turn.text, final=True))
        self._turn = None
        self._last_activity = self._samples
