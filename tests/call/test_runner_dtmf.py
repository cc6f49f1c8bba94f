"""DTMF out through a carrier's REST API (:class:`~gateway.call.runner.RequestsDtmf`): the
runner requests it in its action task, in order with hang-ups and transfers; a failed request
falls back to tones, and the ledger says so; a carrier with no DTMF hook gets tones."""

from __future__ import annotations

import asyncio

from engine.base import Audio, Hangup, SendDtmf, Transfer
from gateway.call.ledger import CallLedger
from gateway.call.registry import CallRegistry
from gateway.call.runner import CallRunner, RequestsDtmf
from tests.call.test_runner import Carrier, make, speech, until


class RestCarrier(Carrier):
    """A carrier whose API plays DTMF: keeps each request among its actions. A slow transfer
    shows the DTMF waits for it; ``refuse`` makes every request fail; ``keys`` is what its
    API accepts."""

    def __init__(self, refuse: bool = False, keys: str = "0123456789*#W") -> None:
        super().__init__()
        self.refuse = refuse
        self.keys = keys

    async def transfer(self, target: str) -> None:
        await asyncio.sleep(0.03)
        await super().transfer(target)

    def can_request_dtmf(self, digits: str) -> bool:
        return all(char in self.keys for char in digits)

    async def request_dtmf(self, digits: str) -> None:
        if self.refuse:
            raise RuntimeError("API answered 404")
        self.actions.append(f"dtmf {digits}")


def rest_runner(carrier: RestCarrier) -> CallRunner:
    runner, _, _, _ = make()
    runner.carrier = carrier
    return runner


async def play_out_speech(runner: CallRunner, carrier: Carrier) -> None:
    """Echo the marks of the speech so far, as a carrier does once it has played."""
    await asyncio.sleep(0.01)
    for name in list(carrier.marks):
        runner.receive_mark(name)


async def run_engine(runner: CallRunner, *events: object) -> asyncio.Task[None]:
    engine = runner.session.engine
    for event in events:
        engine.channel.put(event)  # type: ignore[attr-defined]
    return asyncio.create_task(runner.pump_engine())


async def finish(runner: CallRunner, pump: asyncio.Task[None]) -> CallLedger:
    await runner.session.engine.close()
    await pump
    await runner.close("test")
    return runner.session.ledger


def test_the_stream_transport_and_the_rest_controls_are_requests_dtmf() -> None:
    from gateway.carriers.plivo.control import PlivoControl
    from gateway.carriers.telnyx.control import TelnyxControl
    from gateway.carriers.vonage.control import VonageRestControl
    from gateway.streams.carrier import CloseStreamControl
    from gateway.streams.serve import StreamTransport

    for cls in (StreamTransport, TelnyxControl, PlivoControl, VonageRestControl):
        assert issubclass(cls, RequestsDtmf), cls
    assert not issubclass(CloseStreamControl, RequestsDtmf)  # no credentials: tones
    assert not issubclass(Carrier, RequestsDtmf)


async def test_rest_dtmf_goes_after_the_speech_and_in_order_with_call_actions() -> None:
    carrier = RestCarrier()
    runner = rest_runner(carrier)
    runner.start(CallRegistry())
    pump = await run_engine(
        runner, Audio(speech(0.04)), Transfer("+15005550009"), SendDtmf("1w2#"), Hangup()
    )
    await asyncio.sleep(0.02)
    assert carrier.actions == []  # the speech before them has not played
    frames = carrier.frames
    await play_out_speech(runner, carrier)
    await until(lambda: len(carrier.actions) == 3)
    # The slow transfer went first; the DTMF waited for it, then the hang-up.
    assert carrier.actions == ["transfer +15005550009", "dtmf 1W2#", "hangup"]
    assert carrier.frames == frames  # no tones: the API played the digits
    ledger = await finish(runner, pump)
    assert ledger.errors == []


async def test_a_failed_dtmf_request_falls_back_to_tones_and_is_recorded() -> None:
    carrier = RestCarrier(refuse=True)
    runner = rest_runner(carrier)
    pump = await run_engine(runner, SendDtmf("5"))
    await until(lambda: bool(runner.session.ledger.errors))
    frames = carrier.frames
    await until(lambda: carrier.frames >= frames + 5)  # 100 ms of tone, then 100 ms of gap
    ledger = await finish(runner, pump)
    assert ledger.errors == ["dtmf failed: API answered 404"]
    assert carrier.actions == []


async def test_digits_the_api_cannot_carry_are_tones_without_an_error() -> None:
    carrier = RestCarrier(keys="0123456789")  # like Plivo and Vonage: no A-D
    runner = rest_runner(carrier)
    pump = await run_engine(runner, SendDtmf("A"))
    await until(lambda: carrier.frames >= 5)
    ledger = await finish(runner, pump)
    assert carrier.actions == [] and ledger.errors == []


async def test_a_carrier_with_neither_hook_plays_tones() -> None:
    runner, carrier, _, _ = make()
    pump = await run_engine(runner, SendDtmf("12"))
    await until(lambda: carrier.frames >= 15)  # two tones and their gaps: 400 ms
    ledger = await finish(runner, pump)
    assert carrier.actions == [] and ledger.errors == []
