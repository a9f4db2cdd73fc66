/*
 * The native handles (a TAP device or a UDP socket, one struct for both) and their lifecycle:
 * the per-env table of open handles, creation and wrapping in a JS object, close, finalizers,
 * the env's cleanup hook, and delivery of a batch to the JS callback.
 *
 * The stats Float64Array that each handle writes its counters into has the layout of the ST_*
 * enum below (src/platform/linux/io-counters.ts reads it; STATS_SIZE = ST_COUNT).
 *
 * Every .c file of the addon defines _GNU_SOURCE before its first include (struct mmsghdr).
 */
#ifndef WEFT_HANDLES_H
#define WEFT_HANDLES_H
#include <net/if.h>
#include <node_api.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <uv.h>

#include "napi_util.h"

#define KIND_TAP 1
#define KIND_UDP 2
#define MAX_BUFS 8
#define MAX_BATCH 1024

enum {
  ST_RX_BATCHES,
  ST_RX_PACKETS,
  ST_RX_BYTES,
  ST_RX_ERRORS,
  ST_LAST_ERRNO,
  ST_TX_PACKETS,
  ST_TX_BYTES,
  ST_TX_ERRORS,
  ST_TX_DROPPED,
  ST_GSO_FALLBACKS,
  ST_TRUNCATED,
  ST_POLL_ERRORS,
  ST_SPIN_HITS,
  ST_TX_IOV_LIMIT, /* datagrams dropped whole: more pieces than SPLIT_MAX_IOV */
  ST_RX_CALLS,     /* read-side system calls: read(), recvmmsg() or io_uring_enter() */
  ST_COUNT
};

typedef struct addon addon_t;

/* A TAP's read mode (tap.uring()): not asked for, in use, refused at open, given up at run time. */
enum { RING_OFF, RING_ON, RING_UNAVAILABLE, RING_FELL_BACK };

typedef struct handle {
  int kind;
  int fd;
  napi_env env;
  addon_t *addon;
  struct handle *next;
  uv_poll_t poll;
  int poll_init;
  int polling;
  int closed;     /* fd closed, poll closing or closed */
  int uv_done;    /* uv close callback ran (or poll never initialised) */
  int js_done;    /* JS object finalised */
  napi_ref wrapper;
  napi_ref on_batch;
  napi_ref keep[4]; /* arena, meta, stats, spare */
  napi_async_context actx;
  uint8_t *arena;
  size_t arena_len;
  int32_t *meta;
  size_t meta_len;
  double *stats;
  uint32_t stride, headroom, tailroom, max_batch;
  /* TAP */
  int vnet;
  char name[IFNAMSIZ];
  struct uring *ring; /* batched reads (uring.h); NULL: read() */
  uint32_t ring_k;    /* reads to ask for in the next io_uring_enter */
  int ring_state;     /* RING_* */
  int ring_errno;     /* why there is no ring (RING_UNAVAILABLE, RING_FELL_BACK) */
  /* UDP */
  int family;
  int gso_ok;
  int gro;
  struct mmsghdr *rx_msgs;
  struct iovec *rx_iov;
  struct sockaddr_storage *rx_addr;
  uint8_t *rx_ctrl;
  struct sockaddr_storage *dests;
  socklen_t *dest_len;
  uint32_t ndests;
  uint8_t *bufs[MAX_BUFS];
  size_t buf_len[MAX_BUFS];
  napi_ref buf_refs[MAX_BUFS];
  int32_t *tx_desc;
  size_t tx_desc_len;
  int32_t *tx_iovt;
  size_t tx_iovt_len;
  napi_ref tx_refs[2];
  struct mmsghdr *tx_msgs;
  struct iovec *tx_vec;
  uint8_t *tx_ctrl;
  uint32_t tx_max, tx_vec_max;
} handle_t;

struct addon {
  napi_env env;
  handle_t *handles;
  int64_t spin_ns;
  int spinning;
  napi_async_cleanup_hook_handle cleanup;
  int pending_closes;
  int cleaning;
};

#pragma GCC visibility push(hidden)

/* Sets up the env's handle table (instance data) and the cleanup hook that closes every handle. */
void handles_init(napi_env env);
/* A new handle of `kind` in the env's table, fd -1; NULL when out of memory. */
handle_t *new_handle(napi_env env, int kind);
/* Shared constructor part: arena/meta/stats/batch geometry; 0 after throwing. */
int init_common(napi_env env, napi_value opts, handle_t *h, size_t meta_per_item, const char *what);
/* Ties h to the JS object `self` (freed with it); 0 after discarding h and throwing. */
int wrap_handle(napi_env env, napi_value self, handle_t *h);
/* Closes and frees a handle that never got wrapped (a constructor failed). */
void discard_handle(napi_env env, handle_t *h);
/* One JS callback onBatch(count) for a batch read (count < 0: -errno). */
void deliver(handle_t *h, int32_t count);

/* close(), fd(): methods of both classes. */
napi_value m_close(napi_env env, napi_callback_info info);
napi_value m_fd(napi_env env, napi_callback_info info);

#pragma GCC visibility pop

/* The handle behind `this` of a method call (with its arguments); NULL after throwing. Inline: it
 * is on every send. */
static inline handle_t *unwrap_this(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  void *data = NULL;
  napi_get_cb_info(env, info, argc, argv, &self, NULL);
  if (napi_unwrap(env, self, &data) != napi_ok || data == NULL) {
    throw_arg(env, "not a weft native handle");
    return NULL;
  }
  return (handle_t *)data;
}

#endif
