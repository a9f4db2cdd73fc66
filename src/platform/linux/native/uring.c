/* io_uring reads for TAP batches (see uring.h). Raw system calls: no liburing on the build hosts. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/io_uring.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "uring.h"

#define MAX_K 1024

struct uring {
  int fd;
  unsigned entries;
  unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
  unsigned *cq_head, *cq_tail, *cq_mask;
  struct io_uring_sqe *sqes;
  struct io_uring_cqe *cqes;
  void *sq_map, *cq_map;
  size_t sq_len, cq_len, sqes_len;
  int fallback_errno; /* why uring_read last said URING_FALLBACK */
  int32_t res[MAX_K];
};

int uring_fallback_errno(const uring_t *u) { return u->fallback_errno; }

static int sys_setup(unsigned entries, struct io_uring_params *p) { return (int)syscall(__NR_io_uring_setup, entries, p); }

static int sys_enter(int fd, unsigned submit, unsigned wait, unsigned flags) {
  return (int)syscall(__NR_io_uring_enter, fd, submit, wait, flags, NULL, 0);
}

void uring_close(uring_t *u) {
  if (!u) return;
  if (u->sqes && u->sqes != MAP_FAILED) munmap(u->sqes, u->sqes_len);
  if (u->cq_map && u->cq_map != MAP_FAILED && u->cq_map != u->sq_map) munmap(u->cq_map, u->cq_len);
  if (u->sq_map && u->sq_map != MAP_FAILED) munmap(u->sq_map, u->sq_len);
  if (u->fd >= 0) close(u->fd);
  free(u);
}

uring_t *uring_open(unsigned entries, int *err) {
  if (entries == 0 || entries > MAX_K) {
    *err = EINVAL;
    return NULL;
  }
  uring_t *u = calloc(1, sizeof *u);
  if (!u) {
    *err = ENOMEM;
    return NULL;
  }
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  /* One thread submits; completions need no interrupt of it (both since 6.0; older kernels say
   * EINVAL and get a plain ring). */
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN;
  u->fd = sys_setup(entries, &p);
  if (u->fd < 0 && errno == EINVAL) {
    memset(&p, 0, sizeof p);
    u->fd = sys_setup(entries, &p);
  }
  if (u->fd < 0) {
    *err = errno;
    free(u);
    return NULL;
  }
  u->entries = p.sq_entries;
  u->sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  u->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  int single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single && u->cq_len > u->sq_len) u->sq_len = u->cq_len;
  u->sq_map = mmap(NULL, u->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_SQ_RING);
  if (u->sq_map == MAP_FAILED) goto fail;
  u->cq_map = single ? u->sq_map : mmap(NULL, u->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_CQ_RING);
  if (u->cq_map == MAP_FAILED) goto fail;
  u->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
  u->sqes = mmap(NULL, u->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_SQES);
  if (u->sqes == MAP_FAILED) goto fail;
  uint8_t *sq = u->sq_map, *cq = u->cq_map;
  u->sq_head = (unsigned *)(sq + p.sq_off.head);
  u->sq_tail = (unsigned *)(sq + p.sq_off.tail);
  u->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
  u->sq_array = (unsigned *)(sq + p.sq_off.array);
  u->cq_head = (unsigned *)(cq + p.cq_off.head);
  u->cq_tail = (unsigned *)(cq + p.cq_off.tail);
  u->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
  u->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
  return u;
fail:
  *err = errno;
  uring_close(u);
  return NULL;
}

int uring_read(uring_t *u, int fd, uint8_t *base, size_t stride, uint32_t room, int32_t *lens, unsigned k, int *err) {
  *err = 0;
  if (k > u->entries) k = u->entries;
  if (k == 0) return 0;
  unsigned tail = *u->sq_tail;
  unsigned mask = *u->sq_mask;
  for (unsigned i = 0; i < k; i++) {
    unsigned idx = (tail + i) & mask;
    struct io_uring_sqe *sqe = &u->sqes[idx];
    memset(sqe, 0, sizeof *sqe);
    sqe->opcode = IORING_OP_READ;
    sqe->fd = fd;
    sqe->off = (uint64_t)-1;
    sqe->addr = (uint64_t)(uintptr_t)(base + (size_t)i * stride);
    sqe->len = room;
    sqe->rw_flags = RWF_NOWAIT;
    sqe->user_data = i;
    u->sq_array[idx] = idx;
    u->res[i] = -EINPROGRESS;
  }
  __atomic_store_n(u->sq_tail, tail + k, __ATOMIC_RELEASE);
  unsigned submitted = 0, seen = 0;
  int broken = 0;
  while (seen < k) {
    int r = sys_enter(u->fd, k - submitted, k - seen, IORING_ENTER_GETEVENTS);
    if (r < 0 && errno == EINTR) continue; /* nothing submitted by that call; the wait is retried */
    if (r < 0) {
      broken = errno;
      break;
    }
    submitted += (unsigned)r;
    unsigned head = *u->cq_head;
    unsigned ctail = __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE);
    unsigned cmask = *u->cq_mask;
    unsigned before = seen;
    while (head != ctail) {
      struct io_uring_cqe *c = &u->cqes[head & cmask];
      if (c->user_data < k) u->res[c->user_data] = c->res;
      head++;
      seen++;
    }
    __atomic_store_n(u->cq_head, head, __ATOMIC_RELEASE);
    /* (never expected: every read completes inline) */
    if (r == 0 && seen == before) {
      broken = EIO;
      break;
    }
  }
  int n = 0;
  int drained = 0;
  for (unsigned i = 0; i < k; i++) {
    int32_t res = u->res[i];
    if (res >= 0) {
      if ((unsigned)n != i) memmove(base + (size_t)n * stride, base + (size_t)i * stride, (size_t)res);
      lens[n++] = res;
    } else if (res == -EAGAIN || res == -EINTR) {
      drained = 1;
    } else if (res == -EINVAL || res == -EOPNOTSUPP) {
      if (!broken) broken = -res;
    } else if (res != -EINPROGRESS && *err == 0) {
      *err = -res;
    }
  }
  if (broken) {
    u->fallback_errno = broken;
    *err = URING_FALLBACK;
  }
  else if (*err == 0 && drained) *err = EAGAIN;
  return n;
}
