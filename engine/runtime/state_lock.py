"""One engine per state file: an OS lock held for the engine's whole life, and a record of who holds it.

Two engines writing one SQLite state (``run`` beside a ``serve`` that Claude Desktop started) would interleave
order intents and cursors and corrupt each other's books. Whoever opens a state file for writing first takes an
exclusive advisory lock on ``<db>.lock`` (``flock`` on POSIX, ``msvcrt.locking`` on Windows) and writes into it
who it is: process id, command, start time and, once it serves one, its MCP endpoint. A second process is
refused in one line that names the holder (or, for ``serve``, attaches to that endpoint).

The kernel releases the lock when the process dies, whatever killed it, so a crash never leaves a stale lock
behind: this is why the lock is not a "soft" one (a file whose existence is the lock), which a SIGKILL would
leave in place forever.
"""

import json
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

__all__ = ["Owner", "StateInUse", "StateLock", "lock_path_for"]

_LOCK_OFFSET = 1 << 20  # Windows locks are mandatory byte ranges: lock one far past the owner record it must read


def lock_path_for(db_path: Path) -> Path:
    """The lock file of the state file ``db_path``."""
    return db_path.with_name(db_path.name + ".lock")


@dataclass(frozen=True, slots=True)
class Owner:
    """Who holds a state file."""

    pid: int
    command: str
    started: str
    host: str = ""
    mcp_url: str | None = None
    control: str | None = None

    @classmethod
    def this_process(cls, command: str | None = None) -> "Owner":
        """This process, described by ``command`` (default: its command line, shortened)."""
        described = command or " ".join(["trading-mcp", *sys.argv[1:]])
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return cls(os.getpid(), described[:200], started, socket.gethostname())

    def describe(self) -> str:
        """One phrase for messages: ``process 1234 (trading-mcp serve, started 2026-12-04T18:00:00Z)``."""
        where = f" on {self.host}" if self.host and self.host != socket.gethostname() else ""
        return f"process {self.pid}{where} ({self.command}, started {self.started})"


class StateInUse(Exception):
    """Another process holds the state file; ``owner`` says who, when it could be read."""

    def __init__(self, db_path: Path, owner: Owner | None) -> None:
        holder = owner.describe() if owner is not None else "another process"
        super().__init__(
            f"the state file {db_path} is in use by {holder}: one engine per state file; stop that one first, "
            "or use --db with another file"
        )
        self.db_path = db_path
        self.owner = owner


class StateLock:
    """The lock of one state file. :meth:`acquire` it before opening the state; it is released on :meth:`release`
    or when the process ends in any way."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.path = lock_path_for(db_path)
        self._fd: int | None = None
        self.owner: Owner | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, owner: Owner) -> None:
        """Take the lock and record ``owner`` in it.

        Raises:
            StateInUse: another process holds it (naming that process when it could be read).
            OSError: the lock file cannot be created (an unwritable folder, say).
        """
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if not _try_lock(fd):
            os.close(fd)
            raise StateInUse(self.db_path, read_owner(self.path))
        self._fd = fd
        self._write(owner)

    def update(self, **changes: object) -> None:
        """Record more about the holder (``mcp_url`` once an endpoint listens)."""
        if self._fd is not None and self.owner is not None:
            self._write(replace(self.owner, **changes))  # type: ignore[arg-type]

    def release(self) -> None:
        """Let the next process in (the owner record stays, harmless: it is read only while the lock is held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            _unlock(fd)
        finally:
            os.close(fd)

    def _write(self, owner: Owner) -> None:
        assert self._fd is not None
        data = json.dumps(asdict(owner)).encode()
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, data)
        self.owner = owner

    @staticmethod
    def holder(db_path: Path) -> Owner | None:
        """Who holds ``db_path`` now, or None when nobody does (the lock is free).

        A holder whose record cannot be read is reported with pid 0 and an unknown command.
        """
        path = lock_path_for(db_path)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return None
        try:
            if _try_lock(fd):
                _unlock(fd)
                return None
        finally:
            os.close(fd)
        return read_owner(path) or Owner(0, "unknown command", "unknown time")


def read_owner(path: Path) -> Owner | None:
    """The owner record in a lock file, or None when it cannot be read."""
    try:
        data = json.loads(path.read_bytes()[:_LOCK_OFFSET].decode().strip() or "null")
        return Owner(**data) if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError):
        return None


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, _LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, _LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
