/* trio_uring's C shim: one io_uring instance, driven from Python through cffi.

   Some facts about io_uring that the code below relies on
   --------------------------------------------------------

   io_uring_setup(entries, &params) returns an fd (always close-on-exec) and
   fills params with the offsets of two rings inside memory we mmap from
   that fd:

   * the submission queue (SQ): a ring of indices into a separate array of
     64-byte SQEs. We own the SQ tail; the kernel owns the head. We write an
     SQE, store the new tail with release ordering, and the kernel consumes
     entries up to it during io_uring_enter. We map the index array once to
     the identity (slot i holds index i) so only the tail ever moves.
   * the completion queue (CQ): a ring of 16-byte CQEs {user_data, res,
     flags}. The kernel owns the tail; we own the head. We load the tail
     with acquire ordering, copy entries out, then store the new head with
     release ordering, which hands the slots back.

   io_uring_enter(fd, to_submit, min_complete, flags, arg, argsz) both
   submits and waits. With IORING_ENTER_EXT_ARG (5.11) arg carries a
   relative timeout, so one system call per scheduler tick submits
   everything queued and sleeps until a completion or the timeout (-ETIME).

   With IORING_FEAT_NODROP the kernel never drops a CQE: when the CQ is full
   it parks completions on an overflow list, sets IORING_SQ_CQ_OVERFLOW in
   the SQ flags and may refuse to submit (-EBUSY) until we reap. The Python
   layer (ring.py) handles that by reaping and retrying; this file just
   reports.

   With IORING_SETUP_SQPOLL a kernel thread of our process (iou-sqp-PID)
   polls the SQ tail and submits what we publish, on its own core: while
   it is busy a program submits and reaps with no system call at all.
   After sq_thread_idle ms with nothing to submit it sleeps and sets
   IORING_SQ_NEED_WAKEUP in the SQ flags; whoever publishes an SQE then
   must enter with IORING_ENTER_SQ_WAKEUP (after a full barrier, so that
   the thread cannot look at the old tail and go to sleep in between).
   to_submit means nothing to such a ring; IORING_ENTER_SQ_WAIT waits for
   the thread to make room in a full SQ. The thread reads SQEs as soon as
   the tail moves, so an entry already published can never be rewritten
   (tu_neutralize refuses on such a ring; a cancel goes to the kernel).

   Nothing here knows about Trio or Python objects: every pointer handed in
   is kept alive by the caller (the op record) until its completion arrives.
   Compiled with -Wall -Wextra -Werror (and under AddressSanitizer in CI). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/io_uring.h>

#include "shim.h"

/* Syscall numbers are the same on every architecture that uses the generic
   table (x86_64 and aarch64 included); old libc headers may lack them. */
#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif
#ifndef __NR_io_uring_enter
#define __NR_io_uring_enter 426
#endif
#ifndef __NR_io_uring_register
#define __NR_io_uring_register 427
#endif


struct tu_ring {
    int fd;
    unsigned flags;
    /* SQ ring */
    unsigned *sq_khead, *sq_ktail, *sq_kflags, *sq_array;
    unsigned sq_mask, sq_entries;
    unsigned sq_tail;          /* our copy of the tail: we are its only writer */
    struct io_uring_sqe *sqes;
    /* CQ ring */
    unsigned *cq_khead, *cq_ktail;
    unsigned cq_mask, cq_entries;
    struct io_uring_cqe *cqes;
    /* mappings, for munmap */
    void *sq_ring; size_t sq_ring_sz;
    void *cq_ring; size_t cq_ring_sz;
    void *sqe_mem; size_t sqe_mem_sz;
    /* io_uring_enter calls made on this ring, for statistics */
    unsigned long long enters;
    /* tu_forks when the ring was set up: a different value means this
       process is a child of fork() and the ring belongs to its parent */
    unsigned long forks;
    /* What io_uring_enter is called with: the registered ring's index and
       IORING_ENTER_REGISTERED_RING once tu_register_ring_fd succeeded (the
       kernel then skips looking the fd up on every call), else the fd. */
    int enter_fd;
    unsigned enter_flags;
    /* DEFER_TASKRUN: completions are posted only when we enter with
       GETEVENTS, so a tick that finds the CQ empty must still enter. */
    int defer_taskrun;
    /* SQPOLL: the kernel's thread submits; we only wake it when it sleeps. */
    int sqpoll;
    unsigned long long sq_wakeups;
    /* tu_chain_begin..end: SQEs are written but the tail not yet stored, so
       the poller never sees half a linked chain. */
    int holding;
    /* The provided-buffer ring (tu_pbuf_setup), or NULL. */
    struct io_uring_buf_ring *pbuf_ring;
    size_t pbuf_ring_sz;
    char *pbuf_base;
    size_t pbuf_base_sz;
    unsigned pbuf_entries, pbuf_size, pbuf_mask;
    uint16_t pbuf_tail;
    uint16_t pbuf_bgid;
};

/* A child of fork() inherits the ring's fd and its shared mappings: an SQE
   it queued, a CQE it reaped or an enter it made would act on the parent's
   ring. fork() runs this handler in every child; each ring compares the
   count with its own and refuses to act (-EOWNERDEAD) once they differ.
   One load and one compare per call, nothing in the parent. */
static volatile unsigned long tu_forks;
static pthread_once_t tu_atfork_once = PTHREAD_ONCE_INIT;

static void tu_count_fork(void)
{
    tu_forks++;
}

static void tu_register_atfork(void)
{
    pthread_atfork(NULL, NULL, tu_count_fork);
}

#define TU_FORKED(r) ((r)->forks != tu_forks)

int tu_forked(struct tu_ring *r)
{
    return TU_FORKED(r);
}

static int tu_sys_setup(unsigned entries, struct io_uring_params *p)
{
    long ret = syscall(__NR_io_uring_setup, entries, p);
    return ret < 0 ? -errno : (int)ret;
}

static int tu_sys_enter(struct tu_ring *r, unsigned to_submit, unsigned min_complete,
                        unsigned flags, void *arg, size_t argsz)
{
    long ret;

    if (TU_FORKED(r))
        return -EOWNERDEAD;
    r->enters++;
    ret = syscall(__NR_io_uring_enter, r->enter_fd, to_submit, min_complete,
                  flags | r->enter_flags, arg, argsz);
    if (ret < 0 && r->enter_flags && (errno == EINVAL || errno == EBADF)) {
        /* A registered index is the registering thread's own: from any
           other thread (a close run by the collector, say) use the fd. */
        ret = syscall(__NR_io_uring_enter, r->fd, to_submit, min_complete,
                      flags, arg, argsz);
    }
    return ret < 0 ? -errno : (int)ret;
}

void tu_destroy(struct tu_ring *r)
{
    if (r == NULL)
        return;
    if (r->sqe_mem && r->sqe_mem != MAP_FAILED)
        munmap(r->sqe_mem, r->sqe_mem_sz);
    if (r->cq_ring && r->cq_ring != MAP_FAILED && r->cq_ring != r->sq_ring)
        munmap(r->cq_ring, r->cq_ring_sz);
    if (r->sq_ring && r->sq_ring != MAP_FAILED)
        munmap(r->sq_ring, r->sq_ring_sz);
    if (r->fd >= 0)
        close(r->fd);
    free(r);
}

int tu_setup(unsigned entries, unsigned cq_entries, unsigned flags,
             unsigned sq_thread_idle_ms, struct tu_ring **out, struct tu_info *info)
{
    struct io_uring_params p;
    struct tu_ring *r;
    unsigned i;
    int fd, err;

    pthread_once(&tu_atfork_once, tu_register_atfork);
    memset(&p, 0, sizeof p);
    p.flags = flags;
    if (flags & IORING_SETUP_SQPOLL)
        p.sq_thread_idle = sq_thread_idle_ms;
    if (cq_entries) {
        p.flags |= IORING_SETUP_CQSIZE;
        p.cq_entries = cq_entries;
    }
    fd = tu_sys_setup(entries, &p);
    if (fd < 0)
        return fd;

    r = calloc(1, sizeof *r);
    if (r == NULL) {
        close(fd);
        return -ENOMEM;
    }
    r->fd = fd;
    r->flags = p.flags;
    r->forks = tu_forks;
    r->enter_fd = fd;
    r->defer_taskrun = (p.flags & IORING_SETUP_DEFER_TASKRUN) != 0;
    r->sqpoll = (p.flags & IORING_SETUP_SQPOLL) != 0;

    r->sq_ring_sz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    r->cq_ring_sz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    if (p.features & IORING_FEAT_SINGLE_MMAP) {
        /* One mapping serves both rings: size it for the larger. */
        if (r->cq_ring_sz > r->sq_ring_sz)
            r->sq_ring_sz = r->cq_ring_sz;
        r->cq_ring_sz = r->sq_ring_sz;
    }
    r->sq_ring = mmap(NULL, r->sq_ring_sz, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
    if (r->sq_ring == MAP_FAILED) {
        err = -errno;
        tu_destroy(r);
        return err;
    }
    if (p.features & IORING_FEAT_SINGLE_MMAP) {
        r->cq_ring = r->sq_ring;
    } else {
        r->cq_ring = mmap(NULL, r->cq_ring_sz, PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
        if (r->cq_ring == MAP_FAILED) {
            err = -errno;
            tu_destroy(r);
            return err;
        }
    }
    r->sqe_mem_sz = p.sq_entries * sizeof(struct io_uring_sqe);
    r->sqe_mem = mmap(NULL, r->sqe_mem_sz, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
    if (r->sqe_mem == MAP_FAILED) {
        err = -errno;
        tu_destroy(r);
        return err;
    }

    char *sq = r->sq_ring, *cq = r->cq_ring;
    r->sq_khead = (unsigned *)(sq + p.sq_off.head);
    r->sq_ktail = (unsigned *)(sq + p.sq_off.tail);
    r->sq_kflags = (unsigned *)(sq + p.sq_off.flags);
    r->sq_array = (unsigned *)(sq + p.sq_off.array);
    r->sq_mask = *(unsigned *)(sq + p.sq_off.ring_mask);
    r->sq_entries = *(unsigned *)(sq + p.sq_off.ring_entries);
    r->sqes = r->sqe_mem;
    r->sq_tail = *r->sq_ktail;
    for (i = 0; i < r->sq_entries; i++)
        r->sq_array[i] = i;

    r->cq_khead = (unsigned *)(cq + p.cq_off.head);
    r->cq_ktail = (unsigned *)(cq + p.cq_off.tail);
    r->cq_mask = *(unsigned *)(cq + p.cq_off.ring_mask);
    r->cq_entries = *(unsigned *)(cq + p.cq_off.ring_entries);
    r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);

    info->fd = fd;
    info->features = p.features;
    info->setup_flags = p.flags;
    info->sq_entries = r->sq_entries;
    info->cq_entries = r->cq_entries;
    *out = r;
    return 0;
}

int tu_probe(struct tu_ring *r, unsigned char *supported, unsigned n)
{
    size_t sz = sizeof(struct io_uring_probe)
                + TU_OP_LAST * sizeof(struct io_uring_probe_op);
    struct io_uring_probe *probe;
    unsigned i;
    long ret;

    if (TU_FORKED(r))
        return -EOWNERDEAD;
    probe = calloc(1, sz);
    if (probe == NULL)
        return -ENOMEM;
    ret = syscall(__NR_io_uring_register, r->fd, IORING_REGISTER_PROBE,
                  probe, TU_OP_LAST);
    if (ret < 0) {
        ret = -errno;
        free(probe);
        return (int)ret;
    }
    memset(supported, 0, n);
    for (i = 0; i < probe->ops_len && i < TU_OP_LAST; i++) {
        unsigned op = probe->ops[i].op;
        if (op < n && (probe->ops[i].flags & IO_URING_OP_SUPPORTED))
            supported[op] = 1;
    }
    ret = probe->last_op;
    free(probe);
    return (int)ret;
}

/* Slots free in the SQ right now. The kernel advances the head as it
   consumes entries, so we read it with acquire ordering. */
unsigned tu_sq_space(struct tu_ring *r)
{
    unsigned head = __atomic_load_n(r->sq_khead, __ATOMIC_ACQUIRE);
    return r->sq_entries - (r->sq_tail - head);
}

/* Entries published but not yet consumed by the kernel. */
unsigned tu_sq_pending(struct tu_ring *r)
{
    unsigned head = __atomic_load_n(r->sq_khead, __ATOMIC_ACQUIRE);
    return r->sq_tail - head;
}

static struct io_uring_sqe *tu_next_sqe(struct tu_ring *r, unsigned *index)
{
    if (tu_sq_space(r) == 0)
        return NULL;
    *index = r->sq_tail;
    return &r->sqes[r->sq_tail & r->sq_mask];
}

static void tu_publish(struct tu_ring *r)
{
    r->sq_tail++;
    /* Release: the SQE's contents become visible before the new tail. */
    if (!r->holding)
        __atomic_store_n(r->sq_ktail, r->sq_tail, __ATOMIC_RELEASE);
}

/* A linked chain (an op and its LINK_TIMEOUT) must reach the kernel whole:
   a kernel that sees the op's IOSQE_IO_LINK as the last SQE it has runs
   the op alone, and the timeout that follows fails -EINVAL. An enter
   takes what the tail shows when it is made, so on the other rings a
   chain queued between two enters is whole anyway; the SQPOLL poller
   reads the tail at any moment, so there the chain's SQEs are written
   first and the tail is stored once, after the last (tu_chain_end). */
void tu_chain_begin(struct tu_ring *r)
{
    r->holding = 1;
}

void tu_chain_end(struct tu_ring *r)
{
    r->holding = 0;
    __atomic_store_n(r->sq_ktail, r->sq_tail, __ATOMIC_RELEASE);
}

/* What every push and prep below starts with: refuse in a forked child,
   take the next free SQE and zero it. NULL, with *err set to -EOWNERDEAD
   or -EBUSY (the SQ is full: submit and try again), when there is none. */
static struct io_uring_sqe *tu_claim_sqe(struct tu_ring *r, unsigned *index, long long *err)
{
    struct io_uring_sqe *sqe;

    if (TU_FORKED(r)) {
        *err = -EOWNERDEAD;
        return NULL;
    }
    sqe = tu_next_sqe(r, index);
    if (sqe == NULL) {
        *err = -EBUSY;
        return NULL;
    }
    memset(sqe, 0, sizeof *sqe);
    return sqe;
}

/* Write one SQE. Returns its ring index (>= 0) or -EBUSY when the SQ is
   full; the caller then submits and tries again. */
long long tu_push(struct tu_ring *r, uint8_t opcode, uint8_t sqe_flags,
                  uint16_t ioprio, int32_t fd, uint64_t off, uint64_t addr,
                  uint32_t len, uint32_t op_flags, uint64_t user_data,
                  uint16_t buf_index, int32_t splice_fd_in, uint64_t addr3)
{
    unsigned index;
    long long err;
    struct io_uring_sqe *sqe = tu_claim_sqe(r, &index, &err);

    if (sqe == NULL)
        return err;
    sqe->opcode = opcode;
    sqe->flags = sqe_flags;
    sqe->ioprio = ioprio;
    sqe->fd = fd;
    sqe->off = off;
    sqe->addr = addr;
    sqe->len = len;
    sqe->rw_flags = (__kernel_rwf_t)op_flags;
    sqe->user_data = user_data;
    sqe->buf_index = buf_index;
    sqe->splice_fd_in = splice_fd_in;
    sqe->addr3 = addr3;
    tu_publish(r);
    return (long long)index;
}

/* The hot path of wait_readable/wait_writable, without the generic
   argument list. Returns the ring index or -EBUSY. */
long long tu_push_poll(struct tu_ring *r, int32_t fd, uint32_t mask,
                       uint32_t poll_flags, uint64_t user_data)
{
    unsigned index;
    long long err;
    struct io_uring_sqe *sqe = tu_claim_sqe(r, &index, &err);

    if (sqe == NULL)
        return err;
    sqe->opcode = IORING_OP_POLL_ADD;
    sqe->fd = fd;
    sqe->len = poll_flags;
    sqe->poll32_events = mask;
    sqe->user_data = user_data;
    tu_publish(r);
    return (long long)index;
}

/* IORING_OP_ASYNC_CANCEL of the request whose user_data is target (the
   first match; an op's user_data is unique), with sqe_flags (the caller's
   IOSQE_CQE_SKIP_SUCCESS). Every abort of a wait the kernel holds queues
   one, so it has its own short prep too. */
long long tu_prep_cancel(struct tu_ring *r, uint64_t target, uint64_t user_data,
                         uint8_t sqe_flags)
{
    unsigned index;
    long long err;
    struct io_uring_sqe *sqe = tu_claim_sqe(r, &index, &err);

    if (sqe == NULL)
        return err;
    sqe->opcode = IORING_OP_ASYNC_CANCEL;
    sqe->flags = sqe_flags;
    sqe->fd = -1;
    sqe->addr = target;
    sqe->user_data = user_data;
    tu_publish(r);
    return (long long)index;
}

/* Turn a queued-but-unsubmitted SQE into a NOP so the kernel never acts on
   it (an op cancelled before it was handed over). Only valid while the entry
   is still ahead of the kernel's head and still carries user_data. The
   IOSQE_IO_LINK flag is kept so a linked timeout stays attached. Returns 1
   if neutralized, 0 if the kernel already has it. */
int tu_neutralize(struct tu_ring *r, unsigned index, uint64_t user_data)
{
    unsigned head = __atomic_load_n(r->sq_khead, __ATOMIC_ACQUIRE);
    struct io_uring_sqe *sqe;
    uint8_t keep;

    if (TU_FORKED(r) || r->sqpoll)
        return 0;
    if ((int)(index - head) < 0 || (int)(r->sq_tail - index) <= 0)
        return 0;
    sqe = &r->sqes[index & r->sq_mask];
    if (sqe->user_data != user_data)
        return 0;
    keep = sqe->flags & IOSQE_IO_LINK;
    memset(sqe, 0, sizeof *sqe);
    sqe->opcode = IORING_OP_NOP;
    sqe->flags = keep;
    sqe->fd = -1;
    sqe->user_data = user_data;
    return 1;
}

/* SQPOLL: IORING_ENTER_SQ_WAKEUP if the kernel's thread sleeps and SQEs
   wait for it, else 0 (it will see them by itself). The fence orders our
   tail store before the flags load; the kernel orders its flag store
   before its last look at the tail the same way. */
static unsigned tu_sqpoll_wakeup(struct tu_ring *r)
{
    if (!r->sqpoll || tu_sq_pending(r) == 0)
        return 0;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(r->sq_kflags, __ATOMIC_RELAXED) & IORING_SQ_NEED_WAKEUP) {
        r->sq_wakeups++;
        return IORING_ENTER_SQ_WAKEUP;
    }
    return 0;
}

/* SQPOLL: wake the thread if it sleeps, then wait until the SQ is not
   full (IORING_ENTER_SQ_WAIT returns at once when it isn't). */
int tu_sq_wait(struct tu_ring *r)
{
    if (!r->sqpoll)
        return -EINVAL;
    return tu_sys_enter(r, 0, 0, tu_sqpoll_wakeup(r) | IORING_ENTER_SQ_WAIT, NULL, 0);
}

unsigned long long tu_sq_wakeups(struct tu_ring *r)
{
    return r->sq_wakeups;
}

/* Hand everything queued to the kernel without waiting. */
int tu_submit(struct tu_ring *r)
{
    unsigned pending = tu_sq_pending(r);
    if (pending == 0)
        return 0;
    if (r->sqpoll) {
        /* The thread submits: a system call only to wake it. */
        unsigned wake = tu_sqpoll_wakeup(r);
        int ret = wake ? tu_sys_enter(r, 0, 0, wake, NULL, 0) : 0;
        return ret < 0 ? ret : (int)pending;
    }
    /* With DEFER_TASKRUN the same call runs the completions' task work, so
       what the submission completed inline is in the CQ when it returns. */
    return tu_sys_enter(r, pending, 0,
                        r->defer_taskrun ? IORING_ENTER_GETEVENTS : 0, NULL, 0);
}

/* tu_submit once at least `at` SQEs are queued; with fewer, nothing (0).
   The batched send path's early start (native.py, EARLY_SUBMIT): a send
   queued by the eighth task of a tick leaves at once rather than at the
   tick's end, so the peer works on it while we serve the rest. */
int tu_submit_at(struct tu_ring *r, unsigned at)
{
    if (TU_FORKED(r))
        return -EOWNERDEAD;
    if (tu_sq_pending(r) < at)
        return 0;
    return tu_submit(r);
}

/* Completions may be waiting in the kernel: with DEFER_TASKRUN they are
   posted only by an enter with GETEVENTS, and IORING_SQ_TASKRUN says some
   are pending (the ring is set up with TASKRUN_FLAG). */
static int tu_taskrun_pending(struct tu_ring *r)
{
    return r->defer_taskrun
           && (__atomic_load_n(r->sq_kflags, __ATOMIC_ACQUIRE) & IORING_SQ_TASKRUN);
}

/* Submit everything queued and wait for at least wait_nr completions or
   timeout_ns (relative; < 0 means no limit). Returns the number submitted
   or -errno (-ETIME on timeout, -EINTR on a signal). */
int tu_submit_and_wait(struct tu_ring *r, unsigned wait_nr, long long timeout_ns)
{
    struct io_uring_getevents_arg arg;
    struct __kernel_timespec ts;
    unsigned pending = tu_sq_pending(r);

    memset(&arg, 0, sizeof arg);
    arg.sigmask_sz = _NSIG / 8;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000LL;
        ts.tv_nsec = timeout_ns % 1000000000LL;
        arg.ts = (uint64_t)(uintptr_t)&ts;
    }
    return tu_sys_enter(r, pending, wait_nr,
                        IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG | tu_sqpoll_wakeup(r),
                        &arg, sizeof arg);
}

/* Ask the kernel to move overflowed completions into the CQ. */
int tu_flush_overflow(struct tu_ring *r)
{
    struct io_uring_getevents_arg arg;
    memset(&arg, 0, sizeof arg);
    arg.sigmask_sz = _NSIG / 8;
    return tu_sys_enter(r, 0, 0,
                        IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
                        &arg, sizeof arg);
}

unsigned tu_cq_ready(struct tu_ring *r)
{
    return __atomic_load_n(r->cq_ktail, __ATOMIC_ACQUIRE) - *r->cq_khead;
}

unsigned long long tu_enter_count(struct tu_ring *r)
{
    return r->enters;
}

int tu_cq_overflowed(struct tu_ring *r)
{
    return (__atomic_load_n(r->sq_kflags, __ATOMIC_RELAXED)
            & IORING_SQ_CQ_OVERFLOW) != 0;
}

/* Copy up to max CQEs into the caller's arrays and hand the slots back. */
unsigned tu_reap(struct tu_ring *r, uint64_t *user_data, int32_t *res,
                 uint32_t *flags, unsigned max)
{
    unsigned head = *r->cq_khead;
    unsigned tail = __atomic_load_n(r->cq_ktail, __ATOMIC_ACQUIRE);
    unsigned n = 0;

    if (TU_FORKED(r))
        return 0;  /* the parent's completions: not ours to take */
    while (head != tail && n < max) {
        struct io_uring_cqe *cqe = &r->cqes[head & r->cq_mask];
        user_data[n] = cqe->user_data;
        res[n] = cqe->res;
        flags[n] = cqe->flags;
        head++;
        n++;
    }
    __atomic_store_n(r->cq_khead, head, __ATOMIC_RELEASE);
    return n;
}

/* The scheduler tick in one call: submit what is queued, wait for a
   completion unless one is already there (timeout_ns < 0 = no limit, 0 =
   don't wait), then reap into the arrays. Returns the number reaped (> 0),
   or, with nothing reaped: 0, -ETIME (the wait timed out), -EINTR (a
   signal) or another -errno of a failed enter. */
/* DEFER_TASKRUN: an enter runs the pending task work only in batches (the
   kernel's default is 20 items, or as many as the caller waits for), so a
   burst of completions -- a thousand cancels at once -- would trickle out
   one batch per scheduler tick. While IORING_SQ_TASKRUN says more is
   pending and the CQ has room, enter again asking for all of it, with a
   zero timeout: no waiting, just the work. */
static void tu_run_deferred(struct tu_ring *r)
{
    struct io_uring_getevents_arg arg;
    struct __kernel_timespec ts;
    int rounds, ret;

    for (rounds = 0; rounds < 64 && tu_taskrun_pending(r); rounds++) {
        unsigned room = r->cq_entries - tu_cq_ready(r);
        if (room == 0)
            return;
        memset(&arg, 0, sizeof arg);
        memset(&ts, 0, sizeof ts);
        arg.sigmask_sz = _NSIG / 8;
        arg.ts = (uint64_t)(uintptr_t)&ts;
        ret = tu_sys_enter(r, 0, room, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
                           &arg, sizeof arg);
        if (ret < 0 && ret != -ETIME && ret != -EINTR)
            return;
    }
}

int tu_get_events(struct tu_ring *r, long long timeout_ns, uint64_t *user_data,
                  int32_t *res, uint32_t *flags, unsigned max)
{
    int ret = 0;

    if (TU_FORKED(r))
        return -EOWNERDEAD;
    if (tu_cq_ready(r) || timeout_ns == 0) {
        /* Nothing to wait for: enter only to submit what is queued or to
           have deferred completions posted; a busy tick with neither makes
           no system call at all. */
        if (r->sqpoll) {
            unsigned wake = tu_sqpoll_wakeup(r);
            if (wake)
                ret = tu_sys_enter(r, 0, 0, wake, NULL, 0);
        } else if (tu_sq_pending(r) || tu_taskrun_pending(r))
            ret = tu_sys_enter(r, tu_sq_pending(r), 0,
                               r->defer_taskrun ? IORING_ENTER_GETEVENTS : 0,
                               NULL, 0);
    } else {
        ret = tu_submit_and_wait(r, 1, timeout_ns);
    }
    if (r->defer_taskrun && ret >= 0)
        tu_run_deferred(r);
    if (tu_cq_ready(r))
        return (int)tu_reap(r, user_data, res, flags, max);
    /* Nothing arrived. A wait that submitted something reports the submit
       count even when it timed out, so a non-negative ret is ambiguous: the
       caller checks its own deadline. */
    return ret > 0 ? 0 : ret;
}

/* ==== trio_uring.lowlevel's helper ==== */
int tu_ll_socket_domain(int fd)
{
    int domain = 0;
    socklen_t len = sizeof domain;

    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
        return -errno;
    return domain;
}

/* ==== Registered ring fd ==== */

/* Register the ring's own fd with the ring (IORING_REGISTER_RING_FDS, 5.18),
   so that every io_uring_enter names it by index: the kernel then skips
   the fd table lookup and reference count of each call. Returns 0, or
   -errno (the ring goes on with its plain fd). */
int tu_register_ring_fd(struct tu_ring *r)
{
    struct io_uring_rsrc_update up;
    long ret;

    if (TU_FORKED(r))
        return -EOWNERDEAD;
    memset(&up, 0, sizeof up);
    up.offset = -1U;  /* any free slot */
    up.data = (uint64_t)r->fd;
    ret = syscall(__NR_io_uring_register, r->fd, IORING_REGISTER_RING_FDS, &up, 1);
    if (ret < 0)
        return -errno;
    if (ret != 1)
        return -EINVAL;
    r->enter_fd = (int)up.offset;
    r->enter_flags = IORING_ENTER_REGISTERED_RING;
    return 0;
}

/* ==== Provided buffers: one buffer ring per io_uring ====

   A multishot receive (IORING_RECV_MULTISHOT with IOSQE_BUFFER_SELECT)
   keeps receiving into buffers the kernel takes from a ring we provide
   (IORING_REGISTER_PBUF_RING, 5.19): an array of {addr, len, bid} entries
   whose tail we own and whose head the kernel owns. Each completion names
   the buffer it filled (the upper 16 bits of cqe->flags, with
   IORING_CQE_F_BUFFER set); once we have copied the data out we give the
   buffer back by writing its entry at the tail and moving the tail
   (release ordering, as for the SQ). An empty ring makes a receive fail
   with -ENOBUFS, which ends a multishot receive: nothing is lost, it is
   armed again.

   The tail is a 16-bit field overlaid on the first entry's reserved bits,
   which is why the entries are written at (tail & mask). The memory is
   ours (anonymous mmap, page aligned); the kernel pins the ring's pages. */

int tu_pbuf_setup(struct tu_ring *r, unsigned entries, unsigned size, unsigned bgid)
{
    struct io_uring_buf_reg reg;
    unsigned i;
    long ret;

    if (TU_FORKED(r))
        return -EOWNERDEAD;
    if (r->pbuf_ring != NULL)
        return -EEXIST;
    if (entries == 0 || entries > 32768 || (entries & (entries - 1)) || size == 0)
        return -EINVAL;
    r->pbuf_ring_sz = entries * sizeof(struct io_uring_buf);
    r->pbuf_ring = mmap(NULL, r->pbuf_ring_sz, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r->pbuf_ring == MAP_FAILED) {
        r->pbuf_ring = NULL;
        return -errno;
    }
    r->pbuf_base_sz = (size_t)entries * size;
    r->pbuf_base = mmap(NULL, r->pbuf_base_sz, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r->pbuf_base == MAP_FAILED) {
        ret = -errno;
        munmap(r->pbuf_ring, r->pbuf_ring_sz);
        r->pbuf_ring = NULL;
        r->pbuf_base = NULL;
        return (int)ret;
    }
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)r->pbuf_ring;
    reg.ring_entries = entries;
    reg.bgid = (uint16_t)bgid;
    ret = syscall(__NR_io_uring_register, r->fd, IORING_REGISTER_PBUF_RING, &reg, 1);
    if (ret < 0) {
        ret = -errno;
        munmap(r->pbuf_base, r->pbuf_base_sz);
        munmap(r->pbuf_ring, r->pbuf_ring_sz);
        r->pbuf_ring = NULL;
        r->pbuf_base = NULL;
        return (int)ret;
    }
    r->pbuf_entries = entries;
    r->pbuf_size = size;
    r->pbuf_mask = entries - 1;
    r->pbuf_bgid = (uint16_t)bgid;
    r->pbuf_tail = 0;
    for (i = 0; i < entries; i++) {
        struct io_uring_buf *buf = &r->pbuf_ring->bufs[i];
        buf->addr = (uint64_t)(uintptr_t)(r->pbuf_base + (size_t)i * size);
        buf->len = size;
        buf->bid = (uint16_t)i;
    }
    r->pbuf_tail = (uint16_t)entries;
    __atomic_store_n(&r->pbuf_ring->tail, r->pbuf_tail, __ATOMIC_RELEASE);
    return 0;
}

/* The address of buffer bid, to copy its data out. */
char *tu_pbuf_addr(struct tu_ring *r, unsigned bid)
{
    return r->pbuf_base + (size_t)(bid & r->pbuf_mask) * r->pbuf_size;
}

/* Give n buffers back at once: what one scheduler tick's receive
   completions were copied out of (bufring.py gives them back at the end of
   process_events, in one call instead of one per completion). Each bid
   only once its data has been copied out. */
void tu_pbuf_give_many(struct tu_ring *r, const uint16_t *bids, unsigned n)
{
    unsigned i;

    if (r->pbuf_ring == NULL || TU_FORKED(r))
        return;
    for (i = 0; i < n; i++) {
        unsigned bid = bids[i] & r->pbuf_mask;
        struct io_uring_buf *buf = &r->pbuf_ring->bufs[r->pbuf_tail & r->pbuf_mask];
        buf->addr = (uint64_t)(uintptr_t)(r->pbuf_base + (size_t)bid * r->pbuf_size);
        buf->len = r->pbuf_size;
        buf->bid = (uint16_t)bid;
        r->pbuf_tail++;
    }
    /* One release store publishes them all: the kernel reads the entries
       only up to the tail it sees. */
    __atomic_store_n(&r->pbuf_ring->tail, r->pbuf_tail, __ATOMIC_RELEASE);
}

/* Unregister the buffer ring and free its memory. Only once no receive
   that may select a buffer is in flight (the manager's drain saw every
   op's final completion); otherwise the memory is left mapped for the
   life of the process, as the op tables are. */
void tu_pbuf_release(struct tu_ring *r)
{
    struct io_uring_buf_reg reg;

    if (r->pbuf_ring == NULL)
        return;
    if (!TU_FORKED(r)) {
        memset(&reg, 0, sizeof reg);
        reg.bgid = r->pbuf_bgid;
        syscall(__NR_io_uring_register, r->fd, IORING_UNREGISTER_PBUF_RING, &reg, 1);
    }
    munmap(r->pbuf_base, r->pbuf_base_sz);
    munmap(r->pbuf_ring, r->pbuf_ring_sz);
    r->pbuf_ring = NULL;
    r->pbuf_base = NULL;
}

/* ==== The hot ops' SQEs, one call each, with only the fields they use ==== */

/* IORING_OP_SEND of len bytes at buf (pinned by the caller until the CQE). */
long long tu_prep_send(struct tu_ring *r, int32_t fd, const void *buf, uint32_t len,
                       uint32_t msg_flags, uint64_t user_data)
{
    unsigned index;
    long long err;
    struct io_uring_sqe *sqe = tu_claim_sqe(r, &index, &err);

    if (sqe == NULL)
        return err;
    sqe->opcode = IORING_OP_SEND;
    sqe->fd = fd;
    sqe->addr = (uint64_t)(uintptr_t)buf;
    sqe->len = len;
    sqe->msg_flags = msg_flags;
    sqe->user_data = user_data;
    tu_publish(r);
    return (long long)index;
}

/* A multishot IORING_OP_RECV selecting buffers from the ring's buffer
   group (IOSQE_BUFFER_SELECT): one SQE, a CQE per chunk received. */
long long tu_prep_recv_multishot(struct tu_ring *r, int32_t fd, uint64_t user_data)
{
    unsigned index;
    long long err;
    struct io_uring_sqe *sqe;

    if (r->pbuf_ring == NULL && !TU_FORKED(r))
        return -ENOBUFS;
    sqe = tu_claim_sqe(r, &index, &err);
    if (sqe == NULL)
        return err;
    sqe->opcode = IORING_OP_RECV;
    sqe->flags = IOSQE_BUFFER_SELECT;
    sqe->ioprio = IORING_RECV_MULTISHOT;
    sqe->fd = fd;
    sqe->buf_group = r->pbuf_bgid;
    sqe->user_data = user_data;
    tu_publish(r);
    return (long long)index;
}

/* IORING_OP_READ of up to len bytes into buf at off ((u64)-1: the file
   position), buf pinned by the caller until the CQE. */
long long tu_prep_read(struct tu_ring *r, int32_t fd, void *buf, uint32_t len,
                       uint64_t off, uint64_t user_data)
{
    unsigned index;
    long long err;
    struct io_uring_sqe *sqe = tu_claim_sqe(r, &index, &err);

    if (sqe == NULL)
        return err;
    sqe->opcode = IORING_OP_READ;
    sqe->fd = fd;
    sqe->addr = (uint64_t)(uintptr_t)buf;
    sqe->len = len;
    sqe->off = off;
    sqe->user_data = user_data;
    tu_publish(r);
    return (long long)index;
}
