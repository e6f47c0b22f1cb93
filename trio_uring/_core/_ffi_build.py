"""Build script for the C shim (``trio_uring._core._uring``), compiled by cffi in API mode.

This runs at install time (``setup.py`` names it in ``cffi_modules``). It
compiles ``shim.c`` (the ring: setup, SQE queueing, submit-and-wait, CQE
reaping; its opening comment teaches the kernel API it drives) against the
kernel's own ``<linux/io_uring.h>``: no liburing, nothing vendored.

``CDEF`` below is what Python sees of ``shim.h``, in cffi's dialect: the
same prototypes, plus partial declarations ("``...;``") of the kernel
structs ``trio_uring.lowlevel`` fills in. cffi checks every named field's
offset and type against the real headers when it compiles, so a layout we
got wrong fails the build instead of corrupting memory.

The shim and the module cffi generates around it are compiled with
``-Wall -Wextra -Werror``: a warning is a build failure, here and in CI's
AddressSanitizer build (``TRIO_URING_CFLAGS`` adds flags to both).
"""

from __future__ import annotations

import os
import shutil
import sys

from cffi import FFI

HEADER = "/usr/include/linux/io_uring.h"
HERE = os.path.dirname(os.path.abspath(__file__))
SHIM_SOURCE = os.path.join(HERE, "shim.c")
# Warnings are errors, in shim.c and in the wrapper cffi generates around it.
CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror"]

CDEF = """
struct tu_info {
    int fd;
    unsigned features;
    unsigned setup_flags;
    unsigned sq_entries;
    unsigned cq_entries;
};

struct tu_ring;

/* The kernel's timespec, for LINK_TIMEOUT deadlines (pinned by the op). */
struct __kernel_timespec {
    long long tv_sec;
    long long tv_nsec;
};

int tu_setup(unsigned entries, unsigned cq_entries, unsigned flags,
             unsigned sq_thread_idle_ms, struct tu_ring **out, struct tu_info *info);
void tu_destroy(struct tu_ring *r);
int tu_probe(struct tu_ring *r, unsigned char *supported, unsigned n);

unsigned tu_sq_space(struct tu_ring *r);
unsigned tu_sq_pending(struct tu_ring *r);
long long tu_push(struct tu_ring *r, uint8_t opcode, uint8_t sqe_flags,
                  uint16_t ioprio, int32_t fd, uint64_t off, uint64_t addr,
                  uint32_t len, uint32_t op_flags, uint64_t user_data,
                  uint16_t buf_index, int32_t splice_fd_in, uint64_t addr3);
long long tu_push_poll(struct tu_ring *r, int32_t fd, uint32_t mask,
                       uint32_t poll_flags, uint64_t user_data);
long long tu_prep_cancel(struct tu_ring *r, uint64_t target, uint64_t user_data,
                         uint8_t sqe_flags);
int tu_neutralize(struct tu_ring *r, unsigned index, uint64_t user_data);

int tu_submit(struct tu_ring *r);
int tu_submit_at(struct tu_ring *r, unsigned at);
int tu_sq_wait(struct tu_ring *r);
void tu_chain_begin(struct tu_ring *r);
void tu_chain_end(struct tu_ring *r);
unsigned long long tu_sq_wakeups(struct tu_ring *r);
int tu_submit_and_wait(struct tu_ring *r, unsigned wait_nr, long long timeout_ns);
int tu_flush_overflow(struct tu_ring *r);
int tu_get_events(struct tu_ring *r, long long timeout_ns, uint64_t *user_data,
                  int32_t *res, uint32_t *flags, unsigned max);
unsigned tu_reap(struct tu_ring *r, uint64_t *user_data, int32_t *res,
                 uint32_t *flags, unsigned max);
unsigned tu_cq_ready(struct tu_ring *r);
unsigned long long tu_enter_count(struct tu_ring *r);
int tu_cq_overflowed(struct tu_ring *r);
int tu_forked(struct tu_ring *r);

int tu_register_ring_fd(struct tu_ring *r);

int tu_pbuf_setup(struct tu_ring *r, unsigned entries, unsigned size, unsigned bgid);
char *tu_pbuf_addr(struct tu_ring *r, unsigned bid);
void tu_pbuf_give_many(struct tu_ring *r, const uint16_t *bids, unsigned n);
void tu_pbuf_release(struct tu_ring *r);

long long tu_prep_send(struct tu_ring *r, int32_t fd, const void *buf, uint32_t len,
                       uint32_t msg_flags, uint64_t user_data);
long long tu_prep_recv_multishot(struct tu_ring *r, int32_t fd, uint64_t user_data);
long long tu_prep_read(struct tu_ring *r, int32_t fd, void *buf, uint32_t len,
                       uint64_t off, uint64_t user_data);

#define TU_OP_LAST ...

/* trio_uring.lowlevel's kernel structs (see structs.py), partially
   declared: cffi checks each named field against the real headers. */
struct iovec { void *iov_base; size_t iov_len; ...; };
struct msghdr {
    void *msg_name;
    unsigned int msg_namelen;
    struct iovec *msg_iov;
    size_t msg_iovlen;
    void *msg_control;
    size_t msg_controllen;
    int msg_flags;
    ...;
};
struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; ...; };
struct sockaddr_storage { unsigned short ss_family; ...; };
struct sockaddr_un { unsigned short sun_family; char sun_path[108]; ...; };
struct statx_timestamp { long long tv_sec; unsigned int tv_nsec; ...; };
struct statx {
    unsigned int stx_mask;
    unsigned int stx_blksize;
    unsigned int stx_nlink;
    unsigned int stx_uid;
    unsigned int stx_gid;
    unsigned short stx_mode;
    unsigned long long stx_ino;
    unsigned long long stx_size;
    unsigned long long stx_blocks;
    struct statx_timestamp stx_atime;
    struct statx_timestamp stx_ctime;
    struct statx_timestamp stx_mtime;
    unsigned int stx_rdev_major;
    unsigned int stx_rdev_minor;
    unsigned int stx_dev_major;
    unsigned int stx_dev_minor;
    ...;
};
#define AT_FDCWD ...
#define AT_SYMLINK_NOFOLLOW ...
#define AT_REMOVEDIR ...
#define AT_EMPTY_PATH ...
#define STATX_BASIC_STATS ...

/* The socket's address family (SO_DOMAIN), or -errno: connect and sendmsg
   must know it to encode an address, without wrapping the fd in a
   socket.socket (which would own it and may change its blocking mode). */
int tu_ll_socket_domain(int fd);
"""


class BuildError(RuntimeError):
    """The C shim cannot be built on this machine; the message says why."""


def _check_toolchain() -> None:
    """Fail early, with what to install, rather than with a compiler trace."""
    if not sys.platform.startswith("linux"):
        raise BuildError("trio_uring needs Linux (io_uring is a Linux kernel API).")
    cc = os.environ.get("CC", "cc").split()[0]
    if shutil.which(cc) is None and shutil.which("gcc") is None:
        raise BuildError(
            "trio_uring: no C compiler found (looked for $CC, cc and gcc). "
            "Install one, e.g. `apt-get install gcc` or `dnf install gcc`.",
        )
    if not os.path.exists(HEADER):
        raise BuildError(
            f"trio_uring: {HEADER} is missing. Install the kernel's user-space "
            "headers, e.g. `apt-get install linux-libc-dev` (Debian/Ubuntu) or "
            "`dnf install kernel-headers` (Fedora).",
        )


def make_ffi() -> FFI:
    """Return the FFI builder for ``trio_uring._core._uring``."""
    _check_toolchain()
    ffi = FFI()
    ffi.cdef(CDEF)
    extra = os.environ.get("TRIO_URING_CFLAGS", "").split()
    ffi.set_source(
        "trio_uring._core._uring",
        '#include "shim.h"',
        # Relative to the directory the build runs in (setuptools wants
        # relative source paths; the build runs beside setup.py).
        sources=[os.path.relpath(SHIM_SOURCE)],
        include_dirs=[HERE],
        extra_compile_args=[*CFLAGS, *extra],
        extra_link_args=[a for a in extra if a.startswith("-fsanitize")],
    )
    return ffi


ffibuilder = make_ffi()

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
