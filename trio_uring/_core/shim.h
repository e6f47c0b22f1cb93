/* trio_uring's C shim: the declarations shared by shim.c and the module cffi
   generates from _ffi_build.py (which mirrors them in its CDEF).

   Nothing here knows about Trio or Python objects. Every pointer handed in
   is kept alive by the caller (an op record) until its completion arrives. */
#ifndef TRIO_URING_SHIM_H
#define TRIO_URING_SHIM_H

#include <stdint.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <linux/io_uring.h>
#include <linux/stat.h>

/* Opcodes go up to 62 on the kernels we target; the 6.1 headers stop at 48,
   so the probe is sized by our own bound, not by IORING_OP_LAST. */
#define TU_OP_LAST 64

/* What tu_setup reports about a new ring. */
struct tu_info {
    int fd;
    unsigned features;
    unsigned setup_flags;
    unsigned sq_entries;
    unsigned cq_entries;
};

/* One ring and its mappings; opaque to Python. */
struct tu_ring;

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
/* Whether this process is a child of fork() and the ring its parent's:
   every call that would touch the ring then fails with -EOWNERDEAD. */
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

/* The socket's address family (SO_DOMAIN), or -errno: connect and sendmsg
   must know it to encode an address, without wrapping the fd in a
   socket.socket (which would own it and may change its blocking mode). */
int tu_ll_socket_domain(int fd);

#endif
