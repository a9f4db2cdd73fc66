/*
 * TAP devices: new Tap(options), write(), and the batch read that the poll loop (loop.c) runs.
 *
 *   TAP item i:  arena[i*stride + headroom ..], length lens[i] (vnet_hdr included when enabled)
 *
 * Read: io_uring batches (uring.h) when the handle has a ring, else read() until EAGAIN; either way
 * until the queue is drained or the batch is full, then ONE JS callback with the item count. A
 * read error other than EAGAIN/EINTR stops that handle and reports -errno. Write: synchronous (a TAP
 * write never blocks).
 */
#ifndef WEFT_TAP_H
#define WEFT_TAP_H
#include <errno.h>
#include <linux/if_tun.h>
#include <unistd.h>
#include <uv.h>

#include "handles.h"
#include "uring.h"

/* The offloads a TAP with vnet headers takes for TCP super-frames (exported as TUN_OFFLOADS_TSO). */
#define TAP_OFFLOADS_TSO (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN)
/* UDP GSO (USO) super-frames, Linux 6.2 on (older uapi headers lack them). Offered with the TSO
 * ones when asked; a kernel that refuses them (EINVAL) gets the rest alone (exported as
 * TUN_OFFLOADS_USO; the device's `offloads` says what it took). */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif
#define TAP_OFFLOADS_USO (TUN_F_USO4 | TUN_F_USO6)

#pragma GCC visibility push(hidden)

napi_value tap_ctor(napi_env env, napi_callback_info info);
napi_value tap_write(napi_env env, napi_callback_info info);
napi_value tap_uring(napi_env env, napi_callback_info info);

#pragma GCC visibility pop

/* Inline here, like the UDP read in udp.h: the poll loop's run_batch compiles with the read in it
 * as when all was one file. */
/* Reads one batch; returns the number of items delivered (0 when nothing was ready). */
static inline int tap_batch(handle_t *h) {
  int32_t *lens = h->meta;
  uint32_t max = h->max_batch;
  uint32_t room = h->stride - h->headroom - h->tailroom;
  uint32_t n = 0;
  int fatal = 0;
  int drained = 0;
  /* io_uring (uring.h): k reads per call, k doubling while the queue keeps them all busy and
   * falling back to twice what the last call found; 2 for a lone frame (frame + EAGAIN). */
  while (h->ring && n < max && !drained && !fatal) {
    uint32_t want = h->ring_k < max - n ? h->ring_k : max - n;
    int e;
    int got = uring_read(h->ring, h->fd, h->arena + (size_t)n * h->stride + h->headroom, h->stride, room, lens + n, want, &e);
    h->stats[ST_RX_CALLS] += 1;
    for (int i = 0; i < got; i++) h->stats[ST_RX_BYTES] += (double)lens[n + i];
    n += (uint32_t)got;
    if (e == URING_FALLBACK) {
      h->ring_errno = uring_fallback_errno(h->ring);
      uring_close(h->ring);
      h->ring = NULL;
      h->ring_state = RING_FELL_BACK;
    } else if (e == EAGAIN) {
      drained = 1;
      uint32_t k = 2 * (uint32_t)got;
      h->ring_k = k < 2 ? 2 : k > max ? max : k;
    } else if (e != 0) {
      fatal = e;
    } else {
      h->ring_k = 2 * want > max ? max : 2 * want;
    }
  }
  while (!h->ring && n < max && !drained && !fatal) {
    ssize_t r = read(h->fd, h->arena + (size_t)n * h->stride + h->headroom, room);
    h->stats[ST_RX_CALLS] += 1;
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) fatal = errno;
      break;
    }
    lens[n++] = (int32_t)r;
    h->stats[ST_RX_BYTES] += (double)r;
  }
  if (n > 0) {
    h->stats[ST_RX_BATCHES] += 1;
    h->stats[ST_RX_PACKETS] += n;
    deliver(h, (int32_t)n);
  }
  if (fatal && !h->closed) {
    h->stats[ST_RX_ERRORS] += 1;
    h->stats[ST_LAST_ERRNO] = fatal;
    if (h->polling) uv_poll_stop(&h->poll);
    h->polling = 0;
    deliver(h, -fatal);
  }
  return (int)n;
}

#endif
