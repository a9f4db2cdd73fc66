/*
 * Batched TAP reads through io_uring: one io_uring_enter() reads up to k frames, where the plain
 * path makes one read() per frame and one more that finds the queue empty (EAGAIN). In this VM
 * a system call costs about 2.5 µs before any work, and with 64-byte packets the sending
 * router spent half its time in read() (perf, 2026-12-04), so the call is what is saved.
 *
 * Every read carries RWF_NOWAIT: it completes inline, during the io_uring_enter that submitted
 * it, with a frame or -EAGAIN; it is never left pending to fill an arena slot later (that
 * would write into memory JavaScript is reading). uring_read asks for its k completions before
 * it returns, so nothing is in flight between batches. Reads run in submission order, so
 * frames land in slot order; a slot after an EAGAIN that still got a frame (it arrived in
 * between) is moved down so the batch stays contiguous.
 *
 * A ring is optional: when io_uring is missing or refused (kernels before 5.6, containers whose
 * seccomp profile forbids it, io_uring_disabled), or when a read says the ring cannot do it
 * (EINVAL, EOPNOTSUPP), the handle goes back to read() for good and says why (`tap.uring()`).
 */
#ifndef WEFT_URING_H
#define WEFT_URING_H
#include <stddef.h>
#include <stdint.h>

typedef struct uring uring_t;

#pragma GCC visibility push(hidden)

/* A ring of `entries` (a power of two, at least the largest batch); NULL with *err = errno. */
uring_t *uring_open(unsigned entries, int *err);
void uring_close(uring_t *u);
/* *err from uring_read: the ring cannot be used (io_uring_enter failed, or a read said EINVAL or
 * EOPNOTSUPP). SQEs may be left in the ring: the caller must uring_close it before anything else. */
#define URING_FALLBACK (-1)

/*
 * Reads up to k frames from fd into slots i = 0..k-1 at base + i*stride, room bytes each; lens[i]
 * gets each length. Returns the number of frames (a contiguous prefix, valid whatever *err says);
 * *err is 0 (k frames: there may be more), EAGAIN (the queue was drained), URING_FALLBACK, or the
 * errno of a read that failed (the device's, as read() would give it).
 */
int uring_read(uring_t *u, int fd, uint8_t *base, size_t stride, uint32_t room, int32_t *lens, unsigned k, int *err);
/* The errno behind the last URING_FALLBACK (io_uring_enter's, or the read's EINVAL/EOPNOTSUPP). */
int uring_fallback_errno(const uring_t *u);

#pragma GCC visibility pop

#endif
