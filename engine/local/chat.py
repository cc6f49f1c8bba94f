"""An OpenAI-compatible chat endpoint as the bot's brain, streamed sentence by sentence.

``POST {base_url}/chat/completions`` with ``"stream": true`` answers Server-Sent Events: lines
``data: {json}`` whose ``choices[0].delta.content`` carry the next piece of text, ended by
``data: [DONE]`` (OpenAI API reference, "Create chat completion", streaming; the same format is
served by vLLM, llama.cpp's server, Ollama's /v1 and LM Studio). The responder keeps the
conversation as chat messages, and when the caller cut the bot off it rewrites the bot's last
message to what the caller actually heard, so the model knows what was and was not said.

The model can end the call. The request offers two tools in the chat-completions ``tools``
format: ``end_call`` always, ``transfer_call`` when the route gives a ``transfer_to``. A tool call
streams as ``delta.tool_calls`` entries, the id and name in the first, the JSON ``arguments``
accreting in later ones by ``index`` (some servers reuse index 0 for parallel calls and tell
them apart by a new id only); the responder turns a finished ``end_call`` or ``transfer_call``
into an :class:`~engine.local.flow.Ending` after the reply's words.

Errors: :class:`ChatError` for anything the endpoint did wrong (HTTP status, broken stream,
timeout); the session speaks an apology and the call goes on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from engine.local import nlu
from engine.local.flow import Ending, Reply

log = logging.getLogger("overtalk.engine.local")

__all__ = ["ChatClient", "ChatError", "ChatResponder", "ToolCall"]

DEFAULT_GREETING = "Hello! How can I help you today?"
SPOKEN_STYLE = (
    "You are speaking on a phone call. Answer in one to three short spoken sentences, with no "
    "lists, markup or emoji. If the caller's words seem cut off or unclear, ask them briefly."
)

GOODBYE = "Thank you for calling. Goodbye!"
END_CALL = {
    "type": "function",
    "function": {
        "name": "end_call",
        "description": "Hang up once your reply has been spoken. Use it when the conversation "
        "is over: the caller said goodbye, or has nothing more to ask.",
        "parameters": {"type": "object", "properties": {}},
    },
}
TRANSFER_CALL = {
    "type": "function",
    "function": {
        "name": "transfer_call",
        "description": "Put the caller through to a person once your reply has been spoken. "
        "Use it when the caller asks for a person, or you cannot help them.",
        "parameters": {
            "type": "object",
            "properties": {"reason": {"type": "string", "description": "why, in a few words"}},
        },
    },
}


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool the model called: its name, and its arguments as the JSON text it wrote."""

    name: str
    arguments: str = ""


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

    async def stream(
        self, messages: list[dict[str, str]], tools: list[dict[str, Any]] | None = None
    ) -> AsyncIterator[str | ToolCall]:
        """Yield the reply's text pieces as they arrive, then the tools it called, in order."""
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
        if tools:
            body["tools"] = tools
        url = self.base_url.rstrip("/") + "/chat/completions"
        calls = _ToolCalls()
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
                        break
                    try:
                        delta = json.loads(data)["choices"][0]["delta"]
                        piece = delta.get("content") or ""
                        calls.add(delta.get("tool_calls") or ())
                    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                        log.debug("x chat: ignoring a malformed event %r", data[:80])
                        continue
                    if piece:
                        yield piece
        except httpx.HTTPError as exc:
            raise ChatError(f"chat endpoint failed: {type(exc).__name__}: {exc}") from exc
        for call in calls.finished():
            yield call

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class _ToolCalls:
    """Tool calls assembled from streamed ``delta.tool_calls`` entries."""

    def __init__(self) -> None:
        self._calls: list[list[str]] = []  # [id, name, arguments so far]
        self._slot: dict[int, int] = {}  # the stream's index -> position in _calls

    def add(self, entries: Any) -> None:
        for entry in entries:
            index, call_id = entry.get("index", 0), entry.get("id") or ""
            function = entry.get("function") or {}
            slot = self._slot.get(index)
            if slot is None or (call_id and call_id != self._calls[slot][0]):
                self._calls.append([call_id, "", ""])
                slot = self._slot[index] = len(self._calls) - 1
            call = self._calls[slot]
            call[1] += function.get("name") or ""
            call[2] += function.get("arguments") or ""

    def finished(self) -> list[ToolCall]:
        return [ToolCall(name, arguments) for _, name, arguments in self._calls if name]


class ChatResponder:
    """The conversation with a chat model; same interface as the flow responder.

    ``transfer_to`` (a number or SIP URI, from the route) lets the model put the caller through
    to a person; without it the model can only end the call.
    """

    def __init__(
        self, client: ChatClient, system_prompt: str, greeting: str = "", transfer_to: str = ""
    ) -> None:
        self.client = client
        self.greeting = greeting or DEFAULT_GREETING
        self.transfer_to = transfer_to
        self.tools = [END_CALL, TRANSFER_CALL] if transfer_to else [END_CALL]
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

    async def _reply(self) -> AsyncIterator[str | Ending]:
        parts: list[str] = []
        ending: Ending | None = None
        try:
            async for item in self.client.stream(self.messages, self.tools):
                if isinstance(item, ToolCall):
                    ending = ending or self._ending(item)
                    continue
                parts.append(item)
                yield item
            if ending is not None:
                if not nlu.words("".join(parts)):  # never hang up on the caller in silence
                    parts.append(GOODBYE)
                    yield GOODBYE
                yield ending
        finally:
            text = "".join(parts).strip()
            if nlu.words(text):
                self.messages.append({"role": "assistant", "content": text})

    def _ending(self, call: ToolCall) -> Ending | None:
        if call.name == "end_call":
            return Ending(hangup=True)
        if call.name == "transfer_call" and self.transfer_to:
            return Ending(transfer=self.transfer_to)
        log.info("= chat: the model called an unknown tool %r; ignored", call.name)
        return None

    async def aclose(self) -> None:
        await self.client.aclose()
