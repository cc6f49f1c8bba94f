"""A Pipecat Twilio echo bot: the baseline ``overtalk bench --pipecat`` measures against.

Pipecat's own FastAPI websocket transport and Twilio serializer with a pass-through processor
that turns each input audio frame into an output frame: the smallest Pipecat bot that does
what the echo engine does in stream mode. Auto hang-up is off (it needs Twilio credentials),
and logging is at WARNING as in production (Pipecat's default DEBUG costs it a lot).
Run it with a Python that has ``pipecat-ai[websocket]`` installed:

    python tests/bench/pipecat_echo.py --port 8765
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import uvicorn
from fastapi import FastAPI, WebSocket
from loguru import logger
from pipecat.frames.frames import Frame, InputAudioRawFrame, OutputAudioRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)


class Echo(FrameProcessor):
    """Caller audio in, the same audio out."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            await self.push_frame(
                OutputAudioRawFrame(
                    audio=frame.audio, sample_rate=frame.sample_rate, num_channels=1
                )
            )
        else:
            await self.push_frame(frame, direction)


# Pipecat logs at DEBUG by default; production runs at WARNING (PIPECAT_LOG_LEVEL to compare).
logger.remove()
logger.add(sys.stderr, level=os.environ.get("PIPECAT_LOG_LEVEL", "WARNING"))

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.websocket("/twilio/media")
async def media(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:  # Twilio sends "connected" (optional here) then "start"
        message = json.loads(await websocket.receive_text())
        if message.get("event") == "start":
            break
    start = message["start"]
    serializer = TwilioFrameSerializer(
        stream_sid=start["streamSid"],
        call_sid=start.get("callSid"),
        params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
    )
    transport = FastAPIWebsocketTransport(
        websocket=websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            add_wav_header=False,
            # Send each 20 ms frame as it comes (the default, 40 ms, holds every other
            # frame back by 20 ms: a latency the echo engine does not have).
            audio_out_10ms_chunks=2,
            serializer=serializer,
        ),
    )
    pipeline = Pipeline([transport.input(), Echo(), transport.output()])
    task = PipelineTask(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
    )

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: object, client: object) -> None:
        await task.cancel()

    await PipelineRunner(handle_sigint=False).run(task)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
