"""The kernel's io_uring ABI numbers, as plain Python constants.

Kept apart from ``ring.py`` so that importing them never loads the C
extension: the manager and the availability check can then be imported (and
report a missing build as a *cause*) on a machine where the shim is absent.
"""

from __future__ import annotations

from typing import Final

# Opcode numbers are the kernel's stable ABI. The system headers may be
# older than the running kernel, so we name every opcode ourselves and gate
# each use on the probe.
OPCODE_NAMES: Final = (
    "NOP", "READV", "WRITEV", "FSYNC", "READ_FIXED", "WRITE_FIXED", "POLL_ADD",
    "POLL_REMOVE", "SYNC_FILE_RANGE", "SENDMSG", "RECVMSG", "TIMEOUT",
    "TIMEOUT_REMOVE", "ACCEPT", "ASYNC_CANCEL", "LINK_TIMEOUT", "CONNECT",
    "FALLOCATE", "OPENAT", "CLOSE", "FILES_UPDATE", "STATX", "READ", "WRITE",
    "FADVISE", "MADVISE", "SEND", "RECV", "OPENAT2", "EPOLL_CTL", "SPLICE",
    "PROVIDE_BUFFERS", "REMOVE_BUFFERS", "TEE", "SHUTDOWN", "RENAMEAT",
    "UNLINKAT", "MKDIRAT", "SYMLINKAT", "LINKAT", "MSG_RING", "FSETXATTR",
    "SETXATTR", "FGETXATTR", "GETXATTR", "SOCKET", "URING_CMD", "SEND_ZC",
    "SENDMSG_ZC", "READ_MULTISHOT", "WAITID", "FUTEX_WAIT", "FUTEX_WAKE",
    "FUTEX_WAITV", "FIXED_FD_INSTALL", "FTRUNCATE", "BIND", "LISTEN",
    "RECV_ZC", "EPOLL_WAIT", "READV_FIXED", "WRITEV_FIXED", "PIPE",
)  # fmt: skip
OP: Final = {name: number for number, name in enumerate(OPCODE_NAMES)}

# Setup flags (io_uring_setup(2)).
SETUP_CQSIZE: Final = 1 << 3
SETUP_CLAMP: Final = 1 << 4
SETUP_SUBMIT_ALL: Final = 1 << 7  # 5.18: one bad SQE doesn't stop the batch
SETUP_COOP_TASKRUN: Final = 1 << 8  # 5.19: no IPIs to interrupt us for task work
SETUP_TASKRUN_FLAG: Final = 1 << 9  # 5.19: IORING_SQ_TASKRUN says task work is pending
SETUP_SINGLE_ISSUER: Final = 1 << 12  # 6.0: one thread submits (the one that set it up)
SETUP_DEFER_TASKRUN: Final = 1 << 13  # 6.1: completions posted only when we ask for events
SETUP_SQPOLL: Final = 1 << 1  # a kernel thread polls the SQ

# Feature bits reported by the kernel.
FEATURE_NAMES: Final = (
    "SINGLE_MMAP", "NODROP", "SUBMIT_STABLE", "RW_CUR_POS", "CUR_PERSONALITY",
    "FAST_POLL", "POLL_32BITS", "SQPOLL_NONFIXED", "EXT_ARG", "NATIVE_WORKERS",
    "RSRC_TAGS", "CQE_SKIP", "LINKED_FILE", "REG_REG_RING", "RECVSEND_BUNDLE",
    "MIN_TIMEOUT", "RW_ATTR", "NO_IOWAIT",
)  # fmt: skip
FEAT_NODROP: Final = 1 << 1
FEAT_EXT_ARG: Final = 1 << 8
FEAT_CQE_SKIP: Final = 1 << 11  # IOSQE_CQE_SKIP_SUCCESS works (5.17)

# SQE flags.
IOSQE_IO_LINK: Final = 1 << 2
IOSQE_ASYNC: Final = 1 << 4
IOSQE_CQE_SKIP_SUCCESS: Final = 1 << 6
# CQE flags.
CQE_F_BUFFER: Final = 1 << 0  # the upper 16 bits name the provided buffer used
CQE_F_MORE: Final = 1 << 1
CQE_BUFFER_SHIFT: Final = 16

# What we cannot work without: EXT_ARG makes "submit and wait with a
# timeout" one syscall (5.11), NODROP makes completions impossible to lose.
REQUIRED_FEATURES: Final = {"EXT_ARG": FEAT_EXT_ARG, "NODROP": FEAT_NODROP}


def feature_names(features: int) -> list[str]:
    """Names of the ``IORING_FEAT_*`` bits set in ``features``."""
    return [name for bit, name in enumerate(FEATURE_NAMES) if features & (1 << bit)]
