"""An OpenAI-compatible chat endpoint as the bot's brain, streamed sentence by sentence.

``POST {base_url}/chat/completions`` with ``"stream": true`` answers Server-Sent Events: lines
``data: {json}`` whose ``choices[0].delta.content`` carry the next piece of text, ended by
``data: [DONE]`` (OpenAI API reference, "Create chat completion", streaming; the same format is
served by vLLM, llama.cpp's server, Ollama's /v1 and LM Studio). The responder keeps the
conversation as chat messages, and when the caller cut the bot off it rewrites the bot's last
message to what the caller actually heard, so the model knows what was and was not said.

Errors: :class:`ChatError` for anything the endpoint did wrong (HTTP status, broken stream,
timeout); the session speaks an apology and the call goes on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx

from engine.local import nlu
from engine.local.flow import Reply

log = logging.getLogger("overtalk.engine.local")

__all__ = ["ChatClient", "ChatError", "ChatResponder"]

DEFAULT_GREETING = "Hello! How can I help you today?"
SPOKEN_STYLE = (
    "You are speaking on a phone call. Answer in one to three short spoken sentences, with no "
    "lists, markup or emoji. If the caller's words seem cut off or unclear, ask them briefly."
)


class ChatError(Exception):
    """The chat endpoint failed (status, stream or timeout); the message says how."""


@dataclass
class ChatClient:
    """Streams completions from ``base_url`` (e.g. ``http://127.0.0.1:8000/v1``)."""

    base_url: str
    model: str
    api_key: str = ""
    timeout: float = 20.0
    max_tokens: int = 200
    temperature: float = 0.6
    _client: httpx.AsyncClient | None = field(default=None, init=False, repr=False)

    async def stream(self, messages: list[dict[str, str]]) -> AsyncIterator[str]:
        """Yield the reply's text pieces as they arrive."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        headers = {"Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        body = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        url = self.base_url.rstrip("/") + "/chat/completions"
        try:
            async with self._client.stream("POST", url, json=body, headers=headers) as resp:
                if resp.status_code != 200:
                    detail = (await resp.aread())[:200].decode("utf-8", "replace")
                    raise ChatError(f"chat endpoint answered HTTP {resp.status_code}: {detail}")
                async for line in resp.aiter_lines():
                    if not line.startswith("data:"):
                        continue  # comments, event names, keep-alives, blank separators
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    try:
                        chunk = json.loads(data)
                        piece = chunk["choices"][0]["delta"].get("content") or ""
                    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                        log.debug("x chat: ignoring a malformed event %r", data[:80])
                        continue
                    if piece:
                        yield piece
        except httpx.HTTPError as exc:
            raise ChatError(f"chat endpoint failed: {type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class ChatResponder:
    """The conversation with a chat model; same interface as the flow responder."""

    def __init__(self, client: ChatClient, system_prompt: str, greeting: str = "") -> None:
        self.client = client
        self.greeting = greeting or DEFAULT_GREETING
        self.messages: list[dict[str, str]] = [
            {"role": "system", "content": f"{system_prompt.strip()}\n\n{SPOKEN_STYLE}"}
        ]
        self.acknowledgements: tuple[str, ...] = ("Mm-hmm.", "Okay.", "Right.")

    def start(self) -> Reply:
        self.messages.append({"role": "assistant", "content": self.greeting})
        return Reply((self.greeting,))

    def answer(self, text: str, *, question_heard: bool = True) -> Reply:
        self.messages.append({"role": "user", "content": text})
        return Reply((), more=self._reply())

    def dtmf(self, digit: str) -> Reply | None:
        return self.answer(f"(pressed the {digit} key)")

    def no_input(self) -> Reply:
        return Reply(("Are you still there?",), no_input_after=8.0)

    def heard(self, said: str, heard: str) -> None:
        """The caller heard only ``heard`` of the bot's last turn ``said``: keep that."""
        for message in reversed(self.messages):
            if message["role"] == "assistant":
                if message["content"].strip() == said.strip():
                    message["content"] = (heard + " ...").strip() if heard else "..."
                return

    def snapshot(self) -> object:
        return len(self.messages)

    def restore(self, snapshot: object) -> None:
        del self.messages[int(snapshot) :]  # type: ignore[call-overload]

    def results(self) -> dict[str, str]:
        """A free conversation settles nothing a program could read back."""
        return {}

    async def _reply(self) -> AsyncIterator[str]:
        parts: list[str] = []
        try:
            async for piece in self.client.stream(self.messages):
                parts.append(piece)
                yield piece
        finally:
            text = "".join(parts).strip()
            if nlu.words(text):
                self.messages.append({"role": "assistant", "content": text})

    async def aclose(self) -> None:
        await self.client.aclose()
