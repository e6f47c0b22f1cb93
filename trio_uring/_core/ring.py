"""One io_uring instance: setup, probe, queueing, submission and reaping.

Nothing in this module knows about Trio. It is the thin Python face of the
C shim (see ``shim.c`` for how the rings work), and adds the policies
the C layer leaves to us:

* **Never lose an SQE.** When the SQ is full, ``push`` hands what is queued
  to the kernel (one ``io_uring_enter``) and goes on. ``push_linked`` makes
  room for a whole linked chain first, so a chain is never split across two
  submissions (a split chain would run its head unlinked).
* **Never lose a CQE.** We require ``IORING_FEAT_NODROP``. When the CQ
  overflows the kernel parks completions and may answer ``-EBUSY`` to a
  submit; we then reap what is there into a backlog (handed out by the next
  ``reap``) and retry.
* **EINTR is retried** with the remaining timeout, from Python, so that
  Python-level signal handlers (Trio's ``KeyboardInterrupt`` handler) run in
  between.
* ``user_data`` values come from a per-ring counter tagged with a
  generation number, never from ``id()``: an id can be reused the moment an
  object dies, while a late completion for it may still be on its way.
* **A forked child never touches its parent's ring.** The child inherits the
  ring's fd and shared mappings; the shim notices the fork (``tu_forked``)
  and every call that would queue, reap or enter raises
  ``RingForkedError`` there instead.
"""

from __future__ import annotations

import errno
import itertools
import os
import time
from collections.abc import Callable
from typing import Any, Final

from . import _uring
from .abi import (
    FEAT_CQE_SKIP,
    IOSQE_CQE_SKIP_SUCCESS,
    SETUP_CLAMP,
    SETUP_COOP_TASKRUN,
    SETUP_DEFER_TASKRUN,
    SETUP_SINGLE_ISSUER,
    SETUP_SQPOLL,
    SETUP_SUBMIT_ALL,
    SETUP_TASKRUN_FLAG,
)

ffi = _uring.ffi
lib = _uring.lib

DEFAULT_ENTRIES: Final = 256

# The set-ups tried in order, each falling back to the next where the
# kernel refuses it (EINVAL: a flag it doesn't know):
#
# * DEFER_TASKRUN (6.1, with SINGLE_ISSUER, 6.0): completions' task work
#   runs only when we enter asking for events, never interrupting the
#   program in between, and TASKRUN_FLAG says when some is pending, so a
#   busy tick with nothing to submit makes no system call. Only the thread
#   that set the ring up may submit: not for Trio's guest mode, whose
#   get_events runs in worker threads.
# * COOP_TASKRUN (5.19): no IPI to interrupt us for task work.
# * plain.
DEFERRED_SETUP: Final = (
    SETUP_CLAMP | SETUP_SUBMIT_ALL | SETUP_SINGLE_ISSUER | SETUP_DEFER_TASKRUN
    | SETUP_TASKRUN_FLAG
)  # fmt: skip
COOPERATIVE_SETUP: Final = SETUP_CLAMP | SETUP_SUBMIT_ALL | SETUP_COOP_TASKRUN
PLAIN_SETUP: Final = SETUP_CLAMP
# SQPOLL (see shim.c): a kernel thread submits. The kernel refuses it with
# the task-run flags above (they are about interrupting *our* thread, and
# with SQPOLL the completions' task work runs in the poller);
# SINGLE_ISSUER it accepts, but the poller is the one submitter anyway.
SQPOLL_SETUPS: Final = (SETUP_SQPOLL | SETUP_CLAMP | SETUP_SUBMIT_ALL, SETUP_SQPOLL | SETUP_CLAMP)

_generations = itertools.count(1)
_monotonic = time.monotonic
_INF = float("inf")
_ETIME = errno.ETIME
_EINTR = errno.EINTR
_EBUSY = errno.EBUSY
_EAGAIN = errno.EAGAIN
_EOWNERDEAD = errno.EOWNERDEAD


class RingForkedError(RuntimeError):
    """This process is a child of ``fork()``: the ring, and the run using it, are its parent's."""


def enter_error(ret: int) -> Exception:
    """The exception for a failed ``io_uring_enter`` (or any shim call) that returned ``ret``."""
    if ret == -_EOWNERDEAD:
        return RingForkedError(
            "this io_uring ring belongs to the process that created it; a child made by "
            "fork() cannot go on with its parent's Trio run (start a new run in the child, "
            "or exec)"
        )
    return OSError(-ret, f"io_uring_enter: {os.strerror(-ret)}")


class Ring:
    """An io_uring instance with its mmapped queues.

    Use from one thread at a time. ``close()`` unmaps the queues and closes
    the fd; callers must first make sure the kernel holds no pointer into
    memory they own (the I/O manager cancels and reaps every op first).
    """

    def __init__(
        self,
        entries: int = DEFAULT_ENTRIES,
        cq_entries: int = 0,
        flags: int = -1,
        *,
        single_issuer: bool = True,
        sqpoll_idle_ms: int | None = None,
    ) -> None:
        if entries <= 0:
            raise ValueError(f"ring entries must be positive, not {entries}")
        if cq_entries < 0:
            raise ValueError(f"cq_entries must be >= 0, not {cq_entries}")
        if sqpoll_idle_ms is not None:
            if not 1 <= sqpoll_idle_ms <= 0xFFFF_FFFF:
                raise ValueError(f"sqpoll_idle_ms must be 1 to 2**32 - 1, not {sqpoll_idle_ms}")
            tries = list(SQPOLL_SETUPS) if flags == -1 else [flags | SETUP_SQPOLL]
        elif flags == -1:
            tries = [COOPERATIVE_SETUP, PLAIN_SETUP]
            if single_issuer:
                tries.insert(0, DEFERRED_SETUP)
        else:
            tries = [flags]
        info = ffi.new("struct tu_info *")
        out = ffi.new("struct tu_ring **")
        for flags in tries:
            ret = lib.tu_setup(entries, cq_entries, flags, sqpoll_idle_ms or 0, out, info)
            if ret != -errno.EINVAL:
                break
        if ret < 0:
            raise OSError(-ret, f"io_uring_setup: {os.strerror(-ret)}")
        self._ring = out[0]
        self.fd: int = info.fd
        self.features: int = info.features
        self.setup_flags: int = info.setup_flags
        self.sqpoll: bool = bool(info.setup_flags & SETUP_SQPOLL)
        # Every enter names the ring by a registered index (5.18), if the
        # kernel lets us: one fd lookup less per system call. The index is
        # the registering thread's own, so only for a single-issuer ring
        # (a guest run enters from worker threads).
        self.registered_fd: bool = bool(info.setup_flags & SETUP_SINGLE_ISSUER) and (
            lib.tu_register_ring_fd(self._ring) == 0
        )
        self._cancel_flags = IOSQE_CQE_SKIP_SUCCESS if info.features & FEAT_CQE_SKIP else 0
        self.sq_entries: int = info.sq_entries
        self.cq_entries: int = info.cq_entries
        self.generation: int = next(_generations) & 0xFFFF
        self._ud_base = self.generation << 48
        self._ud_counter = itertools.count(1)
        batch = max(self.cq_entries, 64)
        self._batch = batch
        self._ud_buf = ffi.new("uint64_t[]", batch)
        self._res_buf = ffi.new("int32_t[]", batch)
        self._flags_buf = ffi.new("uint32_t[]", batch)
        # Completions reaped early (while making room to submit) wait here
        # for the next reap(); they are never dropped.
        self._backlog_ud: list[int] = []
        self._backlog_res: list[int] = []
        self._backlog_flags: list[int] = []
        self.sqes_queued = 0
        self.closed = False
        self._probe: frozenset[int] | None = None

    @property
    def forked(self) -> bool:
        """Whether this process is a child of ``fork()`` and the ring its parent's."""
        return not self.closed and bool(lib.tu_forked(self._ring))

    @property
    def sq_wakeups(self) -> int:
        """How many times a submission had to wake the SQPOLL thread (0 on other rings)."""
        return int(lib.tu_sq_wakeups(self._ring)) if not self.closed else self._final_wakeups

    @property
    def enter_calls(self) -> int:
        """``io_uring_enter`` system calls made on this ring so far."""
        return int(lib.tu_enter_count(self._ring)) if not self.closed else self._final_enters

    # -- identity --------------------------------------------------------

    def next_user_data(self) -> int:
        """A fresh ``user_data``: generation tag in the top 16 bits, counter below."""
        return self._ud_base | (next(self._ud_counter) & 0xFFFF_FFFF_FFFF)

    def probe(self) -> frozenset[int]:
        """The set of opcodes this kernel supports (``IORING_REGISTER_PROBE``)."""
        if self._probe is None:
            buf = ffi.new("unsigned char[]", 256)
            ret = lib.tu_probe(self._ring, buf, 256)
            if ret == -_EOWNERDEAD:
                raise enter_error(ret)
            if ret < 0:
                raise OSError(-ret, f"io_uring_register(PROBE): {os.strerror(-ret)}")
            self._probe = frozenset(i for i in range(256) if buf[i])
        return self._probe

    # -- queueing --------------------------------------------------------

    def sq_space(self) -> int:
        """Free SQ slots right now."""
        return int(lib.tu_sq_space(self._ring))

    def sq_pending(self) -> int:
        """SQEs queued but not yet consumed by the kernel."""
        return int(lib.tu_sq_pending(self._ring))

    def push(
        self,
        opcode: int,
        fd: int,
        user_data: int,
        *,
        addr: int = 0,
        length: int = 0,
        off: int = 0,
        op_flags: int = 0,
        sqe_flags: int = 0,
        ioprio: int = 0,
        buf_index: int = 0,
        splice_fd_in: int = 0,
        addr3: int = 0,
    ) -> int:
        """Queue one SQE without a syscall (unless the SQ is full). Returns its index."""
        return self.push_sqe(
            opcode, fd, user_data, addr, length, off, op_flags, sqe_flags, ioprio, buf_index,
            splice_fd_in, addr3,
        )  # fmt: skip

    def push_sqe(
        self,
        opcode: int,
        fd: int,
        user_data: int,
        addr: int,
        length: int,
        off: int,
        op_flags: int,
        sqe_flags: int,
        ioprio: int,
        buf_index: int,
        splice_fd_in: int,
        addr3: int,
    ) -> int:
        """``push`` with every field positional: the op core's hot path."""
        index = lib.tu_push(
            self._ring, opcode, sqe_flags, ioprio, fd, off, addr, length,
            op_flags, user_data, buf_index, splice_fd_in, addr3,
        )  # fmt: skip
        if index < 0:
            if index == -_EOWNERDEAD:
                raise enter_error(index)
            # Full (-EBUSY): hand the queue to the kernel, then queue again.
            self._make_room(1)
            index = lib.tu_push(
                self._ring, opcode, sqe_flags, ioprio, fd, off, addr, length,
                op_flags, user_data, buf_index, splice_fd_in, addr3,
            )  # fmt: skip
            if index < 0:  # pragma: no cover - _make_room guarantees a slot
                raise RuntimeError("io_uring SQ unexpectedly full")
        self.sqes_queued += 1
        return int(index)

    def push_poll(self, fd: int, mask: int, user_data: int, poll_flags: int = 0) -> int:
        """Queue a ``POLL_ADD`` (the readiness hot path). Returns its index."""
        index = lib.tu_push_poll(self._ring, fd, mask, poll_flags, user_data)
        if index < 0:
            if index == -_EOWNERDEAD:
                raise enter_error(index)
            self._make_room(1)
            index = lib.tu_push_poll(self._ring, fd, mask, poll_flags, user_data)
        self.sqes_queued += 1
        return int(index)

    def push_cancel(self, target: int, user_data: int) -> int:
        """Queue an ``IORING_OP_ASYNC_CANCEL`` of the op whose ``user_data`` is ``target``.

        Where the kernel can (``IORING_FEAT_CQE_SKIP``, 5.17), a cancel
        that succeeds posts no CQE of its own: its target's CQE says it
        all, and a mass cancel then costs one completion per op, not two.
        A failed cancel (``-ENOENT``, ``-EALREADY``) still posts one.
        """
        flags = self._cancel_flags
        index = lib.tu_prep_cancel(self._ring, target, user_data, flags)
        if index < 0:
            index = self._again(
                index, lambda: lib.tu_prep_cancel(self._ring, target, user_data, flags)
            )
        self.sqes_queued += 1
        return int(index)

    def begin_chain(self) -> None:
        """SQPOLL: hold the SQ tail until ``end_chain`` (see ``tu_chain_begin``); else nothing."""
        if self.sqpoll:
            lib.tu_chain_begin(self._ring)

    def end_chain(self) -> None:
        """Publish the chain queued since ``begin_chain`` in one store of the tail."""
        if self.sqpoll:
            lib.tu_chain_end(self._ring)

    def reserve(self, count: int) -> None:
        """Make sure the next ``count`` pushes land in one submission.

        Linked chains must be queued after this, so the kernel sees the
        whole chain in the same ``io_uring_enter``.
        """
        if count > self.sq_entries:
            raise ValueError(f"a chain of {count} SQEs cannot fit a ring of {self.sq_entries}")
        self._make_room(count)

    def push_send(self, fd: int, buf: Any, length: int, msg_flags: int, user_data: int) -> int:
        """Queue an ``IORING_OP_SEND`` of ``length`` bytes of ``buf`` (a cdata the caller pins)."""
        index = lib.tu_prep_send(self._ring, fd, buf, length, msg_flags, user_data)
        if index < 0:
            index = self._again(index, lambda: lib.tu_prep_send(
                self._ring, fd, buf, length, msg_flags, user_data))  # fmt: skip
        self.sqes_queued += 1
        return int(index)

    def push_read(self, fd: int, buf: Any, length: int, off: int, user_data: int) -> int:
        """Queue an ``IORING_OP_READ`` of ``length`` bytes into ``buf`` (cdata the caller pins)."""
        index = lib.tu_prep_read(self._ring, fd, buf, length, off, user_data)
        if index < 0:
            index = self._again(index, lambda: lib.tu_prep_read(
                self._ring, fd, buf, length, off, user_data))  # fmt: skip
        self.sqes_queued += 1
        return int(index)

    def push_recv_multishot(self, fd: int, user_data: int) -> int:
        """Queue a multishot ``IORING_OP_RECV`` into the provided buffers (see ``bufring``)."""
        index = lib.tu_prep_recv_multishot(self._ring, fd, user_data)
        if index < 0:
            index = self._again(index, lambda: lib.tu_prep_recv_multishot(
                self._ring, fd, user_data))  # fmt: skip
        self.sqes_queued += 1
        return int(index)

    def _again(self, index: int, push: Callable[[], int]) -> int:
        """A push that failed with ``index`` (< 0): make room if the SQ was full, and retry."""
        if index != -_EBUSY:
            raise enter_error(index)
        self._make_room(1)
        index = push()
        if index < 0:  # pragma: no cover - _make_room guarantees a slot
            raise enter_error(index)
        return index

    def submit_early(self, at: int) -> None:
        """Hand the queue to the kernel now if ``at`` SQEs or more wait in it; else nothing.

        An early start, never a new way to fail: whatever goes wrong here
        (``-EBUSY`` while the CQ overflows, a signal, an enter error) is
        left for the tick's own ``io_uring_enter``, which submits the same
        SQEs and handles it. Callers have already recorded every op queued.
        """
        lib.tu_submit_at(self._ring, at)

    def wait_consumed(self) -> None:
        """SQPOLL: return once the poller has taken every SQE queued so far (else at once).

        The poller reads an SQE, and looks up its fd, whenever it gets to
        it. A close of an fd whose ops were just cancelled
        (``notify_closing``) must not run ahead of that: closed first, the
        fd could be taken by a new file before the poller looked it up, and
        an op queued for the old file would act on the new one. The poller
        consumes within microseconds while it is awake. (A tick that must
        not wait does not wait for it either: on a core the poller shares,
        that wait cost the echo server 0.43x -> 0.10x stock; docs/modes.md.)
        """
        if not self.sqpoll:
            return
        ring = self._ring
        while lib.tu_sq_pending(ring):
            if lib.tu_cq_overflowed(ring):
                self._reap_into_backlog()
                self._flush_overflow()
            ret = lib.tu_submit(ring)  # on this ring: wake the poller if it sleeps
            if ret < 0 and ret != -_EINTR:
                raise enter_error(ret)
            os.sched_yield()

    def neutralize(self, index: int, user_data: int) -> bool:
        """Turn a still-unsubmitted SQE into a NOP. True if it was still ours."""
        return bool(lib.tu_neutralize(self._ring, index & 0xFFFF_FFFF, user_data))

    def _make_room(self, count: int) -> None:
        while lib.tu_sq_space(self._ring) < count:
            if not self.sqpoll:
                self.submit()
                continue
            # The poller frees slots as it submits: wake it if it sleeps
            # and wait for room (completions parked in the kernel can
            # hold it up, so take those into the backlog first).
            if lib.tu_cq_overflowed(self._ring):
                self._reap_into_backlog()
                self._flush_overflow()
            ret = lib.tu_sq_wait(self._ring)
            if ret < 0 and ret != -_EINTR:
                raise enter_error(ret)

    # -- submission and waiting -------------------------------------------

    def submit(self) -> int:
        """Hand every queued SQE to the kernel without waiting."""
        while True:
            if lib.tu_sq_pending(self._ring) == 0:
                return 0
            ret = lib.tu_submit(self._ring)
            if ret >= 0:
                return int(ret)
            if ret == -errno.EINTR:
                continue
            if ret in (-errno.EBUSY, -errno.EAGAIN):
                # The CQ is full and completions are parked in the kernel:
                # reap into the backlog so the kernel can submit again.
                self._reap_into_backlog()
                self._flush_overflow()
                continue
            raise enter_error(ret)

    def wait(self, timeout: float) -> bool:
        """Submit everything queued and wait up to ``timeout`` s for a completion.

        Returns True if completions are ready, False if and only if the
        timeout expired with nothing (a signal alone never ends the wait). A negative or
        infinite timeout means no limit.
        """
        if self._backlog_ud or lib.tu_cq_ready(self._ring):
            self.submit()
            return True
        if lib.tu_cq_overflowed(self._ring):
            self._flush_overflow()
            self.submit()
            return True
        if timeout == 0:
            self.submit()
            return bool(lib.tu_cq_ready(self._ring))
        forever = timeout < 0 or timeout == float("inf")
        deadline = 0.0 if forever else time.monotonic() + timeout
        while True:
            ns = -1 if forever else max(0, int((deadline - time.monotonic()) * 1000000000.0))
            ret = lib.tu_submit_and_wait(self._ring, 1, ns)
            if lib.tu_cq_ready(self._ring):
                return True
            if ret >= 0:
                # Submitted something but the wait itself ended with nothing
                # (the kernel reports the submit count, not -ETIME).
                if not forever and time.monotonic() >= deadline:
                    return False
                continue
            if ret == -errno.ETIME:
                return False
            if ret == -errno.EINTR:
                # Let Python run its signal handlers; a handler that needs
                # the loop awake writes to a wakeup fd we are polling, so the
                # next enter returns at once with that completion.
                if not forever and time.monotonic() >= deadline:
                    return False  # timed out, and nothing completed
                continue
            if ret in (-errno.EBUSY, -errno.EAGAIN):
                self._reap_into_backlog()
                self._flush_overflow()
                return True
            raise enter_error(ret)

    def get_events(self, timeout: float) -> tuple[list[int], list[int], list[int]] | None:
        """One scheduler tick: submit, wait up to ``timeout`` s, reap.

        The common case is a single C call (one ``io_uring_enter`` at most).
        Returns the completions as parallel lists (user_data, res, flags), or
        None if and only if the timeout expired with nothing. A negative or
        infinite timeout means no limit.
        """
        ring = self._ring
        if self._backlog_ud or lib.tu_cq_overflowed(ring):
            # Rare: completions parked by an earlier EBUSY, or an overflow.
            return self.reap() if self.wait(timeout) else None
        if timeout == 0:
            ns = 0
        elif timeout < 0 or timeout == _INF:
            ns = -1
        else:
            ns = max(1, int(timeout * 1e9))
            deadline = _monotonic() + timeout
        batch = self._batch
        while True:
            n = lib.tu_get_events(ring, ns, self._ud_buf, self._res_buf, self._flags_buf, batch)
            if n > 0:
                uds: list[int] = ffi.unpack(self._ud_buf, n)
                res: list[int] = ffi.unpack(self._res_buf, n)
                flags: list[int] = ffi.unpack(self._flags_buf, n)
                if n == batch or lib.tu_cq_overflowed(ring):
                    more = self.reap()
                    uds += more[0]
                    res += more[1]
                    flags += more[2]
                return uds, res, flags
            if n == 0 or n == -_EINTR or n == -_ETIME:
                if ns == 0 or n == -_ETIME:
                    return None
                # The wait ended with nothing (after a signal, whose Python
                # handler runs between our calls): go on until the deadline.
                if ns > 0:
                    left = deadline - _monotonic()
                    if left <= 0:
                        return None
                    ns = max(1, int(left * 1e9))
                continue
            if n == -_EBUSY or n == -_EAGAIN:
                self._reap_into_backlog()
                self._flush_overflow()
                return self.reap()
            raise enter_error(n)

    def _flush_overflow(self) -> None:
        if lib.tu_cq_overflowed(self._ring):
            ret = lib.tu_flush_overflow(self._ring)
            if ret < 0 and ret not in (-errno.EINTR, -errno.EBUSY, -errno.EAGAIN, -errno.ETIME):
                raise enter_error(ret)

    # -- reaping ---------------------------------------------------------

    def _reap_into_backlog(self) -> None:
        n = lib.tu_reap(self._ring, self._ud_buf, self._res_buf, self._flags_buf, self._batch)
        if n:
            self._backlog_ud += ffi.unpack(self._ud_buf, n)
            self._backlog_res += ffi.unpack(self._res_buf, n)
            self._backlog_flags += ffi.unpack(self._flags_buf, n)

    def reap(self) -> tuple[list[int], list[int], list[int]]:
        """Every completion ready now, as parallel lists (user_data, res, flags)."""
        uds, res, flags = self._backlog_ud, self._backlog_res, self._backlog_flags
        self._backlog_ud, self._backlog_res, self._backlog_flags = [], [], []
        ring = self._ring
        while True:
            n = lib.tu_reap(ring, self._ud_buf, self._res_buf, self._flags_buf, self._batch)
            if n == 0:
                if lib.tu_cq_overflowed(ring):
                    self._flush_overflow()
                    if lib.tu_cq_ready(ring):
                        continue
                break
            uds += ffi.unpack(self._ud_buf, n)
            res += ffi.unpack(self._res_buf, n)
            flags += ffi.unpack(self._flags_buf, n)
        return uds, res, flags

    # -- teardown ----------------------------------------------------------

    def close(self, *, release_buffers: bool = True) -> None:
        """Unmap the queues and close the ring fd. Idempotent.

        ``release_buffers=False`` leaves the provided buffers' memory mapped
        for the life of the process: for a close whose drain could not see
        every receive end, after which the kernel might still write there.
        """
        if not self.closed:
            self._final_enters = int(lib.tu_enter_count(self._ring))
            self._final_wakeups = int(lib.tu_sq_wakeups(self._ring))
            self.closed = True
            if release_buffers:
                lib.tu_pbuf_release(self._ring)
            lib.tu_destroy(self._ring)
            self._ring = ffi.NULL
