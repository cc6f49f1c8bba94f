"""Hot reload: keep a good plan in force while its files change underneath.

:class:`PlanHolder` is synchronous and does no waiting: :meth:`PlanHolder.check_once` looks at
the files once and reloads if their content changed, :meth:`PlanHolder.reload` reloads
unconditionally. A broken edit is refused: its problems are logged and returned, and the plan
in force stays. The asyncio side is two thin adapters at the bottom: :func:`watch` polls
``check_once`` on an interval, :func:`install_sighup` reloads on ``SIGHUP``; both run the
reading and parsing in a worker thread, so a large or slow plan never stalls the calls on the
event loop (one reload at a time: the holder takes a lock).

Calls in progress are never switched to a new plan: each was routed by an immutable
:class:`~gateway.dialplan.plan.DialPlan`, and the holder keeps the last few replaced plans by
digest (:meth:`PlanHolder.get`), so a media session that starts after a reload still finds the
plan named by its stream's ``plan`` parameter.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import signal
import threading
from collections import OrderedDict
from collections.abc import Collection, Mapping
from pathlib import Path

from gateway.dialplan.loader import MAX_FILE_BYTES, PlanFileUnreadable, load, read_plan_file
from gateway.dialplan.plan import DialPlan
from gateway.dialplan.problems import DialPlanInvalid, Problem

__all__ = ["PlanHolder", "install_sighup", "watch"]

log = logging.getLogger("gateway.dialplan")

#: A file's fingerprint: its content hash, or None while it is missing or unreadable.
Fingerprint = dict[Path, str | None]


def _fingerprint(files: Collection[Path], max_bytes: int = MAX_FILE_BYTES) -> Fingerprint:
    """Content hashes, not mtimes: an edit within the file system's mtime resolution, or a
    restore of an older file, must still be noticed. Plan files are small; hashing is cheap.
    A file the loader would refuse (``/dev/zero``, too large) is not read: it counts as
    unreadable, like a missing one."""
    out: Fingerprint = {}
    for path in files:
        try:
            out[path] = hashlib.sha256(read_plan_file(path, max_bytes)).hexdigest()
        except PlanFileUnreadable:
            out[path] = None
    return out


class PlanHolder:
    """The plan in force for one plan file, and the few it recently replaced.

    Construction loads the plan and raises :class:`DialPlanInvalid` if it is broken: a gateway
    should not start without a plan. Later failures never raise; they are returned.
    """

    def __init__(
        self,
        path: str | Path,
        engines: Collection[str],
        *,
        env: Mapping[str, str] | None = None,
        keep: int = 8,
        max_bytes: int = MAX_FILE_BYTES,
    ) -> None:
        self.path = Path(path)
        self.engines = frozenset(engines)
        self.env = env
        self.keep = keep
        self.max_bytes = max_bytes
        self._current = load(self.path, self.engines, env=env, max_bytes=max_bytes)
        self._recent: OrderedDict[str, DialPlan] = OrderedDict()
        self._recent[self._current.digest] = self._current
        self._seen = _fingerprint(self._current.files, max_bytes)
        self.last_problems: list[Problem] = []
        #: Reloads run in worker threads (SIGHUP and the watch may overlap): one at a time.
        self._lock = threading.Lock()

    @property
    def current(self) -> DialPlan:
        """The plan new calls are routed by."""
        return self._current

    def get(self, digest: str) -> DialPlan | None:
        """The plan with ``digest`` if it is in force or was recently, else None."""
        return self._recent.get(digest)

    def reload(self) -> list[Problem]:
        """Load the files again. On success the new plan is in force and ``[]`` is returned; on
        failure the plan in force stays and the problems are returned (and logged)."""
        with self._lock:
            return self._reload()

    def _reload(self) -> list[Problem]:
        try:
            plan = load(self.path, self.engines, env=self.env, max_bytes=self.max_bytes)
        except DialPlanInvalid as exc:
            # Watch what the failed attempt read too: creating a missing include must count.
            self._seen = _fingerprint([*self._current.files, *exc.files], self.max_bytes)
            self.last_problems = exc.problems
            log.warning(
                "x dial plan %s refused, plan %s stays in force:\n%s",
                self.path,
                self._current.digest,
                exc,
            )
            return exc.problems
        self._seen = _fingerprint(plan.files, self.max_bytes)
        self.last_problems = []
        if plan.digest != self._current.digest:
            log.info(
                "= dial plan %s: %s in force (was %s): %s",
                self.path,
                plan.digest,
                self._current.digest,
                plan.summary(),
            )
            self._current = plan
            self._recent[plan.digest] = plan
            self._recent.move_to_end(plan.digest)
            while len(self._recent) > self.keep:
                self._recent.popitem(last=False)
        return []

    def check_once(self) -> list[Problem] | None:
        """Reload if any watched file changed since the last look.

        Returns None when nothing changed, else what :meth:`reload` returned. The watched files
        are the plan's files (plan, includes, flows) plus any a failed attempt tried to read.
        """
        with self._lock:
            now = _fingerprint(self._seen.keys(), self.max_bytes)
            if now == self._seen:
                return None
            log.debug("= dial plan %s: files changed, reloading", self.path)
            return self._reload()


# -- asyncio adapters --------------------------------------------------------------------------


async def watch(holder: PlanHolder, interval: float = 1.0) -> None:
    """Poll ``holder.check_once()`` every ``interval`` seconds until cancelled.

    Each look runs in a worker thread: hashing is cheap, but a changed plan is parsed there
    too, and a large one takes seconds that the calls on the loop cannot spare. A failure
    other than a refused plan (a bug) is logged and the watch carries on: losing hot reload
    silently would be worse than a log line per interval.
    """
    while True:
        try:
            await asyncio.to_thread(holder.check_once)
        except Exception:
            log.exception("x dial plan watch of %s failed; still watching", holder.path)
        await asyncio.sleep(interval)


def install_sighup(holder: PlanHolder, loop: asyncio.AbstractEventLoop) -> None:
    """Reload the plan when the process gets ``SIGHUP`` (``kill -HUP``, ``systemctl reload``).

    The reload runs in a worker thread, off the loop. Unix only: raises NotImplementedError
    where the loop has no signal handlers.
    """
    pending: set[asyncio.Future[list[Problem]]] = set()

    def reload() -> None:
        future = loop.run_in_executor(None, holder.reload)
        pending.add(future)  # kept until done, so the result is not collected unfinished
        future.add_done_callback(pending.discard)

    loop.add_signal_handler(signal.SIGHUP, reload)
