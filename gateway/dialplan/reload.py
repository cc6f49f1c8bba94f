"""Hot reload: keep a good plan in force while its files change underneath.

:class:`PlanHolder` is synchronous and does no waiting: :meth:`PlanHolder.check_once` looks at
the files once and reloads if their content changed, :meth:`PlanHolder.reload` reloads
unconditionally. A broken edit is refused: its problems are logged and returned, and the plan
in force stays. The asyncio side is two thin adapters at the bottom: :func:`watch` polls
``check_once`` on an interval, :func:`install_sighup` reloads on ``SIGHUP``.

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
from collections import OrderedDict
from collections.abc import Collection, Mapping
from pathlib import Path

from gateway.dialplan.loader import load
from gateway.dialplan.plan import DialPlan
from gateway.dialplan.problems import DialPlanInvalid, Problem

__all__ = ["PlanHolder", "install_sighup", "watch"]

log = logging.getLogger("gateway.dialplan")

#: A file's fingerprint: its content hash, or None while it is missing or unreadable.
Fingerprint = dict[Path, str | None]


def _fingerprint(files: Collection[Path]) -> Fingerprint:
    """Content hashes, not mtimes: an edit within the file system's mtime resolution, or a
    restore of an older file, must still be noticed. Plan files are small; hashing is cheap."""
    out: Fingerprint = {}
    for path in files:
        try:
            out[path] = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
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
    ) -> None:
        self.path = Path(path)
        self.engines = frozenset(engines)
        self.env = env
        self.keep = keep
        self._current = load(self.path, self.engines, env=env)
        self._recent: OrderedDict[str, DialPlan] = OrderedDict()
        self._recent[self._current.digest] = self._current
        self._seen = _fingerprint(self._current.files)
        self.last_problems: list[Problem] = []

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
        try:
            plan = load(self.path, self.engines, env=self.env)
        except DialPlanInvalid as exc:
            # Watch what the failed attempt read too: creating a missing include must count.
            self._seen = _fingerprint([*self._current.files, *exc.files])
            self.last_problems = exc.problems
            log.warning(
                "x dial plan %s refused, plan %s stays in force:\n%s",
                self.path,
                self._current.digest,
                exc,
            )
            return exc.problems
        self._seen = _fingerprint(plan.files)
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
        now = _fingerprint(self._seen.keys())
        if now == self._seen:
            return None
        log.debug("= dial plan %s: files changed, reloading", self.path)
        return self.reload()


# -- asyncio adapters --------------------------------------------------------------------------


async def watch(holder: PlanHolder, interval: float = 1.0) -> None:
    """Poll ``holder.check_once()`` every ``interval`` seconds until cancelled.

    Reading a few small files is quicker than a thread hop, so it runs on the loop. A failure
    other than a refused plan (a bug) is logged and the watch carries on: losing hot reload
    silently would be worse than a log line per interval.
    """
    while True:
        try:
            holder.check_once()
        except Exception:
            log.exception("x dial plan watch of %s failed; still watching", holder.path)
        await asyncio.sleep(interval)


def install_sighup(holder: PlanHolder, loop: asyncio.AbstractEventLoop) -> None:
    """Reload the plan when the process gets ``SIGHUP`` (``kill -HUP``, ``systemctl reload``).

    Unix only: raises NotImplementedError where the loop has no signal handlers.
    """
    loop.add_signal_handler(signal.SIGHUP, holder.reload)
