/*
 * weft native data-path I/O: TAP devices and UDP sockets for the router, driven from libuv.
 *
 * Read side (both kinds): a level-triggered uv_poll on a non-blocking fd. Each wakeup reads one
 * batch into a JS-owned arena at a fixed stride (TAP: read() until EAGAIN or the batch is full;
 * UDP: one recvmmsg with UDP_GRO), writes per-item metadata into a JS-owned Int32Array and makes
 * ONE JS callback with the item count. A negative count reports an error (-errno).
 *
 *   TAP item i:  arena[i*stride + headroom ..], length lens[i] (vnet_hdr included when enabled)
 *   UDP item i:  meta[i*10 + 0..9] = offset, length, gro segment size (0 none, -1 truncated),
 *                source port, family (4|6), address words a0..a3 (big-endian u32; v4 uses a0)
 *
 * Write side: TAP writes are synchronous (a TAP write never blocks). UDP sends take descriptors
 * from JS-owned Int32Arrays: desc[i*4] = iovStart, iovCount, gsoSize (0 = none), destIndex and
 * iov[j*3] = bufferId, offset, length over buffers registered once, so the hot path passes only
 * integers. Messages go out in one sendmmsg; UDP_SEGMENT is a per-message cmsg. When the kernel
 * refuses GSO (EIO: no checksum offload on the route) the addon switches GSO off for the socket
 * and sends the segments one by one; EAGAIN drops the rest of the batch (counted, never queued).
 *
 * Errors: POLLERR makes libuv stop the poll; we read SO_ERROR, count it and re-arm. A TAP read
 * error other than EAGAIN/EINTR stops that handle and reports -errno. Syscall failures in
 * constructors throw Errors carrying code, syscall, errno, errnoName and target.
 *
 * Latency: optionally (setSpin), after a batch the thread polls every open handle of this env for
 * up to spinUs of idleness (capped at 1 ms per wakeup) before returning to libuv, saving a sleep
 * and wakeup per packet at low rates.
 *
 * Lifecycle: an async cleanup hook stops and closes every handle when the env ends, so
 * process.exit() and worker termination never hang on an open poll.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <node_api.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "native.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

#define KIND_TAP 1
#define KIND_UDP 2
#define RX_META_STRIDE 10
#define TX_DESC_STRIDE 4
#define TX_IOV_STRIDE 3
#define MAX_BUFS 8
#define MAX_BATCH 1024
#define RX_CTRL_SZ 64
#define TX_CTRL_SZ CMSG_SPACE(sizeof(uint16_t))
#define SPIN_CAP_NS 1000000LL
/* Pieces of one datagram when a GSO message is sent as separate datagrams (send_split). */
#define SPLIT_MAX_IOV 64

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
  ST_COUNT
};

typedef struct addon addon_t;

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
  napi_ref tap_ctor, udp_ctor;
  int64_t spin_ns;
  int spinning;
  napi_async_cleanup_hook_handle cleanup;
  int pending_closes;
  int cleaning;
};

/* ---------- small helpers ---------- */

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

const char *errno_name(int e) {
  const char *n = strerrorname_np(e);
  return n ? n : "EUNKNOWN";
}

void throw_sys(napi_env env, const char *code, const char *syscall, int err, const char *target) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s on %s failed: %s (%s)", syscall, target, strerror(err), errno_name(err));
  napi_value m, c, e, v;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c);
  napi_create_error(env, c, m, &e);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, e, "syscall", v);
  napi_create_int32(env, err, &v);
  napi_set_named_property(env, e, "errno", v);
  napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, e, "errnoName", v);
  napi_create_string_utf8(env, target, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, e, "target", v);
  napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, e, "detail", v);
  napi_throw(env, e);
}

static void throw_arg(napi_env env, const char *msg) { napi_throw_type_error(env, "ERR_INVALID_ARG", msg); }

static int has_prop(napi_env env, napi_value obj, const char *key, napi_value *out) {
  bool has = false;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok || !has) return 0;
  napi_get_named_property(env, obj, key, out);
  napi_valuetype t;
  napi_typeof(env, *out, &t);
  return t != napi_undefined && t != napi_null;
}

static int opt_u32(napi_env env, napi_value obj, const char *key, uint32_t dflt, uint32_t *out) {
  napi_value v;
  if (!has_prop(env, obj, key, &v)) {
    *out = dflt;
    return 1;
  }
  if (napi_get_value_uint32(env, v, out) != napi_ok) {
    char msg[128];
    snprintf(msg, sizeof msg, "option %s must be a non-negative integer", key);
    throw_arg(env, msg);
    return 0;
  }
  return 1;
}

static int opt_bool(napi_env env, napi_value obj, const char *key, int dflt) {
  napi_value v;
  bool b;
  if (!has_prop(env, obj, key, &v)) return dflt;
  if (napi_get_value_bool(env, v, &b) != napi_ok) return dflt;
  return b ? 1 : 0;
}

/* The string option `key` into buf: its length, 0 when absent, -1 when not a string, -2 when it
 * does not fit in len - 1 bytes (never truncated). */
static int opt_string(napi_env env, napi_value obj, const char *key, char *buf, size_t len) {
  napi_value v;
  size_t need, got;
  buf[0] = 0;
  if (!has_prop(env, obj, key, &v)) return 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &need) != napi_ok) return -1;
  if (need >= len) return -2;
  if (napi_get_value_string_utf8(env, v, buf, len, &got) != napi_ok) return -1;
  return (int)got;
}

/* The "netns" option (a path, PATH_MAX at most) into buf[PATH_MAX]; throws and returns 0 when it is
 * not a string or too long (a truncated path could name another namespace). */
static int opt_netns(napi_env env, napi_value obj, char *buf, const char *code) {
  int r = opt_string(env, obj, "netns", buf, PATH_MAX);
  if (r == -1) {
    throw_arg(env, "option netns must be a string (a network namespace path)");
    return 0;
  }
  if (r == -2) {
    napi_value v;
    size_t need = 0, got;
    char head[65], target[128];
    napi_get_named_property(env, obj, "netns", &v);
    napi_get_value_string_utf8(env, v, NULL, 0, &need);
    napi_get_value_string_utf8(env, v, head, sizeof head, &got);
    snprintf(target, sizeof target, "%s... (%zu bytes, at most %d)", head, need, PATH_MAX - 1);
    throw_sys(env, code, "open", ENAMETOOLONG, target);
    return 0;
  }
  return 1;
}

/* Gets a Buffer/typed array option as raw bytes and keeps a strong reference in *ref. */
static int opt_bytes(napi_env env, napi_value obj, const char *key, void **data, size_t *len, napi_ref *ref) {
  napi_value v;
  char msg[128];
  if (!has_prop(env, obj, key, &v)) {
    snprintf(msg, sizeof msg, "option %s is required", key);
    throw_arg(env, msg);
    return 0;
  }
  bool is_ta = false;
  napi_is_typedarray(env, v, &is_ta);
  if (!is_ta) {
    snprintf(msg, sizeof msg, "option %s must be a Buffer or typed array", key);
    throw_arg(env, msg);
    return 0;
  }
  napi_typedarray_type type;
  size_t n, off;
  napi_value ab;
  napi_get_typedarray_info(env, v, &type, &n, data, &ab, &off);
  size_t el = 1;
  switch (type) {
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: el = 4; break;
    case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: el = 8; break;
    case napi_int16_array: case napi_uint16_array: el = 2; break;
    default: el = 1;
  }
  *len = n * el;
  napi_create_reference(env, v, 1, ref);
  return 1;
}

/* ---------- network namespaces ---------- */

/* Enters the namespace at `path` for this thread; *saved gets the fd to return with. 0 on success. */
int enter_netns(const char *path, int *saved) {
  *saved = -1;
  if (path[0] == 0) return 0;
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) return errno;
  int target = open(path, O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    int e = errno;
    close(self);
    return e;
  }
  if (setns(target, CLONE_NEWNET) < 0) {
    int e = errno;
    close(target);
    close(self);
    return e;
  }
  close(target);
  *saved = self;
  return 0;
}

void leave_netns(int saved) {
  if (saved < 0) return;
  if (setns(saved, CLONE_NEWNET) < 0) abort(); /* continuing in the wrong namespace would be worse */
  close(saved);
}

/* ---------- lifecycle ---------- */

static void maybe_free(handle_t *h) {
  if (!h->uv_done || !h->js_done) return;
  free(h->rx_msgs);
  free(h->rx_iov);
  free(h->rx_addr);
  free(h->rx_ctrl);
  free(h->dests);
  free(h->dest_len);
  free(h->tx_msgs);
  free(h->tx_vec);
  free(h->tx_ctrl);
  free(h);
}

static void unlink_handle(handle_t *h) {
  addon_t *a = h->addon;
  handle_t **pp = &a->handles;
  while (*pp) {
    if (*pp == h) {
      *pp = h->next;
      break;
    }
    pp = &(*pp)->next;
  }
}

static void on_uv_closed(uv_handle_t *uh) {
  handle_t *h = (handle_t *)uh->data;
  addon_t *a = h->addon;
  h->uv_done = 1;
  if (a->cleaning && --a->pending_closes == 0 && a->cleanup) {
    napi_async_cleanup_hook_handle c = a->cleanup;
    a->cleanup = NULL;
    napi_remove_async_cleanup_hook(c);
  }
  maybe_free(h);
}

/* Stops polling, closes the fd and starts closing the uv handle. Safe to call twice. */
static void close_handle(handle_t *h, int from_js_env) {
  if (h->closed) return;
  h->closed = 1;
  unlink_handle(h);
  if (h->poll_init) {
    if (h->polling) uv_poll_stop(&h->poll);
    h->polling = 0;
    if (h->addon->cleaning) h->addon->pending_closes++;
    uv_close((uv_handle_t *)&h->poll, on_uv_closed);
  } else {
    h->uv_done = 1;
  }
  if (h->fd >= 0) close(h->fd);
  h->fd = -1;
  if (from_js_env) {
    for (int i = 0; i < 4; i++)
      if (h->keep[i]) {
        napi_delete_reference(h->env, h->keep[i]);
        h->keep[i] = NULL;
      }
    for (int i = 0; i < MAX_BUFS; i++)
      if (h->buf_refs[i]) {
        napi_delete_reference(h->env, h->buf_refs[i]);
        h->buf_refs[i] = NULL;
        h->bufs[i] = NULL;
      }
    for (int i = 0; i < 2; i++)
      if (h->tx_refs[i]) {
        napi_delete_reference(h->env, h->tx_refs[i]);
        h->tx_refs[i] = NULL;
      }
    if (h->on_batch) {
      napi_delete_reference(h->env, h->on_batch);
      h->on_batch = NULL;
    }
    if (h->actx) {
      napi_async_destroy(h->env, h->actx);
      h->actx = NULL;
    }
  }
}

static void finalize_handle(napi_env env, void *data, void *hint) {
  (void)hint;
  handle_t *h = (handle_t *)data;
  close_handle(h, 0);
  if (h->wrapper) napi_delete_reference(env, h->wrapper);
  h->wrapper = NULL;
  h->js_done = 1;
  maybe_free(h);
}

static void addon_cleanup(napi_async_cleanup_hook_handle hh, void *arg) {
  addon_t *a = (addon_t *)arg;
  a->cleanup = hh;
  a->cleaning = 1;
  a->pending_closes = 1; /* guard while closing */
  while (a->handles) close_handle(a->handles, 0);
  if (--a->pending_closes == 0) {
    a->cleanup = NULL;
    napi_remove_async_cleanup_hook(hh);
  }
}

static void addon_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

/* ---------- delivery to JS ---------- */

static void deliver(handle_t *h, int32_t count) {
  napi_env env = h->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, global, arg, result;
  if (h->on_batch && napi_get_reference_value(env, h->on_batch, &cb) == napi_ok && cb != NULL) {
    napi_get_global(env, &global);
    napi_create_int32(env, count, &arg);
    napi_status s = napi_make_callback(env, h->actx, global, cb, 1, &arg, &result);
    if (s == napi_pending_exception) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc);
    }
  }
  napi_close_handle_scope(env, scope);
}

/* Reads one batch; returns the number of items delivered (0 when nothing was ready). */
static int tap_batch(handle_t *h) {
  int32_t *lens = h->meta;
  uint32_t max = h->max_batch;
  uint32_t room = h->stride - h->headroom - h->tailroom;
  uint32_t n = 0;
  int fatal = 0;
  while (n < max) {
    ssize_t r = read(h->fd, h->arena + (size_t)n * h->stride + h->headroom, room);
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

static void fill_src(int32_t *m, const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
    m[3] = ntohs(s4->sin_port);
    m[4] = 4;
    m[5] = (int32_t)ntohl(s4->sin_addr.s_addr);
    m[6] = m[7] = m[8] = 0;
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
    const uint32_t *w = (const uint32_t *)&s6->sin6_addr;
    m[3] = ntohs(s6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
      m[4] = 4;
      m[5] = (int32_t)ntohl(w[3]);
      m[6] = m[7] = m[8] = 0;
    } else {
      m[4] = 6;
      for (int k = 0; k < 4; k++) m[5 + k] = (int32_t)ntohl(w[k]);
    }
  } else {
    m[3] = 0;
    m[4] = 0;
    m[5] = m[6] = m[7] = m[8] = 0;
  }
  m[9] = 0;
}

static int udp_batch(handle_t *h) {
  uint32_t max = h->max_batch;
  for (uint32_t i = 0; i < max; i++) {
    struct msghdr *mh = &h->rx_msgs[i].msg_hdr;
    mh->msg_name = &h->rx_addr[i];
    mh->msg_namelen = sizeof(struct sockaddr_storage);
    mh->msg_iov = &h->rx_iov[i];
    mh->msg_iovlen = 1;
    mh->msg_control = h->rx_ctrl + (size_t)i * RX_CTRL_SZ;
    mh->msg_controllen = RX_CTRL_SZ;
    mh->msg_flags = 0;
  }
  int n;
  for (int tries = 0;; tries++) {
    n = recvmmsg(h->fd, h->rx_msgs, max, MSG_DONTWAIT, NULL);
    if (n >= 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return 0;
    /* A pending socket error (e.g. ICMP) is returned once; count it and try again. */
    h->stats[ST_RX_ERRORS] += 1;
    h->stats[ST_LAST_ERRNO] = errno;
    if (tries >= 3) return 0;
  }
  if (n == 0) return 0;
  for (int i = 0; i < n; i++) {
    int32_t *m = h->meta + (size_t)i * RX_META_STRIDE;
    struct msghdr *mh = &h->rx_msgs[i].msg_hdr;
    int32_t seg = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
      if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
        int v;
        memcpy(&v, CMSG_DATA(c), sizeof v);
        seg = v;
      }
    }
    if (mh->msg_flags & MSG_TRUNC) {
      seg = -1;
      h->stats[ST_TRUNCATED] += 1;
    }
    m[0] = (int32_t)((size_t)i * h->stride);
    m[1] = (int32_t)h->rx_msgs[i].msg_len;
    m[2] = seg;
    fill_src(m, &h->rx_addr[i]);
    h->stats[ST_RX_BYTES] += h->rx_msgs[i].msg_len;
  }
  h->stats[ST_RX_BATCHES] += 1;
  h->stats[ST_RX_PACKETS] += n;
  deliver(h, n);
  return n;
}

static int run_batch(handle_t *h) { return h->kind == KIND_TAP ? tap_batch(h) : udp_batch(h); }

static void on_poll(uv_poll_t *p, int status, int events);

static void rearm(handle_t *h) {
  if (!h->closed && h->poll_init) {
    if (uv_poll_start(&h->poll, UV_READABLE, on_poll) == 0) h->polling = 1;
  }
}

/* Busy-polls every polling handle of the addon until spin_ns passes without work (capped). */
static void spin(addon_t *a) {
  struct pollfd pfds[64];
  handle_t *hs[64];
  int64_t start = mono_ns();
  int64_t idle_deadline = start + a->spin_ns;
  int64_t hard_deadline = start + SPIN_CAP_NS;
  a->spinning = 1;
  for (;;) {
    int n = 0;
    for (handle_t *h = a->handles; h && n < 64; h = h->next) {
      if (!h->polling || h->closed) continue;
      pfds[n].fd = h->fd;
      pfds[n].events = POLLIN;
      pfds[n].revents = 0;
      hs[n++] = h;
    }
    if (n == 0) break;
    int r = poll(pfds, (nfds_t)n, 0);
    int64_t now = mono_ns();
    if (r > 0) {
      int any = 0;
      for (int i = 0; i < n; i++) {
        if ((pfds[i].revents & POLLIN) && !hs[i]->closed && hs[i]->polling) {
          if (run_batch(hs[i]) > 0) {
            hs[i]->stats[ST_SPIN_HITS] += 1;
            any = 1;
          }
        }
      }
      now = mono_ns();
      if (any) idle_deadline = now + a->spin_ns;
    }
    if (now >= idle_deadline || now >= hard_deadline) break;
  }
  a->spinning = 0;
}

static void on_poll(uv_poll_t *p, int status, int events) {
  (void)events;
  handle_t *h = (handle_t *)p->data;
  if (h->closed) return;
  if (status < 0) {
    /* libuv has stopped the poll (POLLERR). Read and clear the socket error, report, re-arm. */
    int err = EIO;
    socklen_t l = sizeof err;
    if (h->kind == KIND_UDP) getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &l);
    h->polling = 0;
    h->stats[ST_POLL_ERRORS] += 1;
    h->stats[ST_LAST_ERRNO] = err;
    if (h->kind == KIND_UDP) rearm(h);
    deliver(h, -(err ? err : EIO));
    return;
  }
  int n = run_batch(h);
  addon_t *a = h->addon;
  if (n > 0 && a->spin_ns > 0 && !a->spinning) spin(a);
}

/* ---------- common JS methods ---------- */

static handle_t *unwrap_this(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  void *data = NULL;
  napi_get_cb_info(env, info, argc, argv, &self, NULL);
  if (napi_unwrap(env, self, &data) != napi_ok || data == NULL) {
    throw_arg(env, "not a weft native handle");
    return NULL;
  }
  return (handle_t *)data;
}

static napi_value m_start(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  handle_t *h = unwrap_this(env, info, &argc, argv);
  if (!h) return NULL;
  if (h->closed) {
    throw_arg(env, "handle is closed");
    return NULL;
  }
  napi_valuetype t;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_function) {
    throw_arg(env, "start(onBatch) needs a function");
    return NULL;
  }
  if (h->on_batch) napi_delete_reference(env, h->on_batch);
  napi_create_reference(env, argv[0], 1, &h->on_batch);
  if (!h->poll_init) {
    uv_loop_t *loop;
    napi_get_uv_event_loop(env, &loop);
    int r = uv_poll_init(loop, &h->poll, h->fd);
    if (r != 0) {
      throw_sys(env, "ERR_POLL", "uv_poll_init", -r, h->name);
      return NULL;
    }
    h->poll.data = h;
    h->poll_init = 1;
    h->uv_done = 0;
  }
  if (!h->polling) {
    int r = uv_poll_start(&h->poll, UV_READABLE, on_poll);
    if (r != 0) {
      throw_sys(env, "ERR_POLL", "uv_poll_start", -r, h->name);
      return NULL;
    }
    h->polling = 1;
  }
  return NULL;
}

static napi_value m_stop(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  handle_t *h = unwrap_this(env, info, &argc, NULL);
  if (!h) return NULL;
  if (h->polling) uv_poll_stop(&h->poll);
  h->polling = 0;
  return NULL;
}

static napi_value m_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  handle_t *h = unwrap_this(env, info, &argc, NULL);
  if (!h) return NULL;
  close_handle(h, 1);
  return NULL;
}

static napi_value m_fd(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  handle_t *h = unwrap_this(env, info, &argc, NULL);
  if (!h) return NULL;
  napi_value v;
  napi_create_int32(env, h->fd, &v);
  return v;
}

static napi_value m_poll_now(napi_env env, napi_callback_info info) {
  /* Reads one batch synchronously (tests and shutdown drains); returns the item count. */
  size_t argc = 0;
  handle_t *h = unwrap_this(env, info, &argc, NULL);
  if (!h) return NULL;
  napi_value v;
  napi_create_int32(env, h->closed ? 0 : run_batch(h), &v);
  return v;
}

/* Shared constructor part: arena/meta/stats/batch geometry. */
static int init_common(napi_env env, napi_value opts, handle_t *h, size_t meta_per_item, const char *what) {
  void *p;
  size_t len;
  if (!opt_bytes(env, opts, "arena", &p, &len, &h->keep[0])) return 0;
  h->arena = p;
  h->arena_len = len;
  if (!opt_bytes(env, opts, "meta", &p, &len, &h->keep[1])) return 0;
  h->meta = p;
  h->meta_len = len / 4;
  if (!opt_bytes(env, opts, "stats", &p, &len, &h->keep[2])) return 0;
  if (len < ST_COUNT * sizeof(double)) {
    char m[96];
    snprintf(m, sizeof m, "stats must be a Float64Array of at least %d entries (STATS_SIZE)", ST_COUNT);
    throw_arg(env, m);
    return 0;
  }
  h->stats = p;
  if (!opt_u32(env, opts, "stride", 0, &h->stride)) return 0;
  if (!opt_u32(env, opts, "maxBatch", 0, &h->max_batch)) return 0;
  if (!opt_u32(env, opts, "headroom", 0, &h->headroom)) return 0;
  if (!opt_u32(env, opts, "tailroom", 0, &h->tailroom)) return 0;
  char msg[256];
  if (h->max_batch == 0 || h->max_batch > MAX_BATCH) {
    snprintf(msg, sizeof msg, "%s: maxBatch must be 1..%d", what, MAX_BATCH);
    throw_arg(env, msg);
    return 0;
  }
  if (h->stride < h->headroom + h->tailroom + 64 || (size_t)h->stride * h->max_batch > h->arena_len) {
    snprintf(msg, sizeof msg, "%s: arena of %zu bytes cannot hold %u slots of stride %u (headroom %u, tailroom %u)",
             what, h->arena_len, h->max_batch, h->stride, h->headroom, h->tailroom);
    throw_arg(env, msg);
    return 0;
  }
  if (h->meta_len < meta_per_item * h->max_batch) {
    snprintf(msg, sizeof msg, "%s: meta needs %zu int32 entries", what, meta_per_item * h->max_batch);
    throw_arg(env, msg);
    return 0;
  }
  napi_value name;
  napi_create_string_utf8(env, what, NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &h->actx);
  return 1;
}

static handle_t *new_handle(napi_env env, int kind) {
  addon_t *a;
  napi_get_instance_data(env, (void **)&a);
  handle_t *h = calloc(1, sizeof *h);
  if (!h) return NULL;
  h->kind = kind;
  h->fd = -1;
  h->env = env;
  h->addon = a;
  h->uv_done = 1;
  h->next = a->handles;
  a->handles = h;
  return h;
}

static void discard_handle(napi_env env, handle_t *h) {
  close_handle(h, 1);
  h->js_done = 1;
  (void)env;
  maybe_free(h);
}

static int wrap_handle(napi_env env, napi_value self, handle_t *h) {
  if (napi_wrap(env, self, h, finalize_handle, NULL, &h->wrapper) != napi_ok) {
    discard_handle(env, h);
    throw_arg(env, "cannot wrap native handle");
    return 0;
  }
  return 1;
}

/* ---------- TAP ---------- */

/* new Tap({ name, vnetHdr, offloads, multiQueue, arena, meta: lens, stats, stride, headroom,
 *           tailroom, maxBatch }) */
static napi_value tap_ctor(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], self;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  if (argc < 1) {
    throw_arg(env, "new Tap(options) needs options");
    return NULL;
  }
  handle_t *h = new_handle(env, KIND_TAP);
  if (!h) {
    throw_sys(env, "ERR_TAP_OPEN", "calloc", ENOMEM, "tap");
    return NULL;
  }
  char name[IFNAMSIZ + 8];
  int nlen = opt_string(env, argv[0], "name", name, sizeof name);
  if (nlen < 0 || nlen >= IFNAMSIZ) {
    discard_handle(env, h);
    throw_arg(env, "tap name must be a string of at most 15 bytes");
    return NULL;
  }
  snprintf(h->name, sizeof h->name, "%.15s", nlen > 0 ? name : "tap");
  if (!init_common(env, argv[0], h, 1, h->name)) {
    discard_handle(env, h);
    return NULL;
  }
  uint32_t offloads = 0;
  if (!opt_u32(env, argv[0], "offloads", 0, &offloads)) {
    discard_handle(env, h);
    return NULL;
  }
  h->vnet = opt_bool(env, argv[0], "vnetHdr", 0);
  int mq = opt_bool(env, argv[0], "multiQueue", 0);
  char nspath[PATH_MAX];
  int saved_ns;
  if (!opt_netns(env, argv[0], nspath, "ERR_TAP_OPEN")) {
    discard_handle(env, h);
    return NULL;
  }
  int nse = enter_netns(nspath, &saved_ns);
  if (nse) {
    discard_handle(env, h);
    throw_sys(env, "ERR_TAP_OPEN", "setns", nse, nspath);
    return NULL;
  }
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  int tse = 0;
  if (fd >= 0) {
    struct ifreq ifr0;
    memset(&ifr0, 0, sizeof ifr0);
    ifr0.ifr_flags = IFF_TAP | IFF_NO_PI | (h->vnet ? IFF_VNET_HDR : 0) | (mq ? IFF_MULTI_QUEUE : 0);
    memcpy(ifr0.ifr_name, h->name, strlen(h->name));
    /* The device is created (or attached) in the namespace we are in now. */
    if (ioctl(fd, TUNSETIFF, &ifr0) < 0) tse = errno;
  }
  int open_errno = fd < 0 ? errno : 0;
  leave_netns(saved_ns);
  if (fd < 0) {
    errno = open_errno;
    int e = errno;
    discard_handle(env, h);
    throw_sys(env, "ERR_TAP_OPEN", "open", e, "/dev/net/tun");
    return NULL;
  }
  h->fd = fd;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (tse || ioctl(fd, TUNGETIFF, &ifr) < 0) {
    int e = tse ? tse : errno;
    char target[64];
    snprintf(target, sizeof target, "tap %s", h->name);
    discard_handle(env, h);
    throw_sys(env, "ERR_TAP_OPEN", "ioctl(TUNSETIFF)", e, target);
    return NULL;
  }
  memcpy(h->name, ifr.ifr_name, IFNAMSIZ);
  h->name[IFNAMSIZ - 1] = 0;
  if (h->vnet) {
    int sz = 10;
    if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) {
      int e = errno;
      discard_handle(env, h);
      throw_sys(env, "ERR_TAP_OPEN", "ioctl(TUNSETVNETHDRSZ)", e, name);
      return NULL;
    }
  }
  /* Always explicit: offload flags persist on a device, and a plain reader must never get GSO. */
  if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)(h->vnet ? offloads : 0)) < 0) {
    int e = errno;
    discard_handle(env, h);
    throw_sys(env, "ERR_TAP_OPEN", "ioctl(TUNSETOFFLOAD)", e, h->name);
    return NULL;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
    int e = errno;
    discard_handle(env, h);
    throw_sys(env, "ERR_TAP_OPEN", "fcntl(O_NONBLOCK)", e, h->name);
    return NULL;
  }
  if (!wrap_handle(env, self, h)) return NULL;
  napi_value v;
  napi_create_string_utf8(env, h->name, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, self, "name", v);
  return self;
}

static const uint8_t zero_vnet[12];

/* write(buf, off, len, prependZeroVnetHdr) -> bytes written or -errno */
static napi_value tap_write(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  handle_t *h = unwrap_this(env, info, &argc, argv);
  if (!h) return NULL;
  void *data;
  size_t blen;
  uint32_t off, len;
  bool zero = false;
  if (argc < 3 || napi_get_buffer_info(env, argv[0], &data, &blen) != napi_ok ||
      napi_get_value_uint32(env, argv[1], &off) != napi_ok || napi_get_value_uint32(env, argv[2], &len) != napi_ok) {
    throw_arg(env, "write(buf, off, len, zeroHdr) needs a Buffer and two integers");
    return NULL;
  }
  if (argc > 3) napi_get_value_bool(env, argv[3], &zero);
  if ((size_t)off + len > blen) {
    throw_arg(env, "write: off+len beyond the buffer");
    return NULL;
  }
  ssize_t r;
  if (h->closed) {
    r = -EBADF;
  } else {
    do {
      if (zero && h->vnet) {
        struct iovec iov[2] = {{(void *)zero_vnet, 10}, {(uint8_t *)data + off, len}};
        r = writev(h->fd, iov, 2);
      } else {
        r = write(h->fd, (uint8_t *)data + off, len);
      }
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      r = -errno;
      h->stats[ST_TX_ERRORS] += 1;
      h->stats[ST_LAST_ERRNO] = errno;
    } else {
      h->stats[ST_TX_PACKETS] += 1;
      h->stats[ST_TX_BYTES] += (double)r;
    }
  }
  napi_value v;
  napi_create_int32(env, (int32_t)r, &v);
  return v;
}

/* ---------- UDP ---------- */

static int make_sockaddr(napi_env env, const char *addr, uint32_t port, int family, struct sockaddr_storage *ss,
                         socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  struct in_addr a4;
  struct in6_addr a6;
  if (inet_pton(AF_INET, addr, &a4) == 1) {
    if (family == 6) {
      struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
      s6->sin6_family = AF_INET6;
      s6->sin6_port = htons((uint16_t)port);
      s6->sin6_addr.s6_addr[10] = 0xff;
      s6->sin6_addr.s6_addr[11] = 0xff;
      memcpy(&s6->sin6_addr.s6_addr[12], &a4, 4);
      *len = sizeof *s6;
    } else {
      struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
      s4->sin_family = AF_INET;
      s4->sin_port = htons((uint16_t)port);
      s4->sin_addr = a4;
      *len = sizeof *s4;
    }
    return 1;
  }
  if (inet_pton(AF_INET6, addr, &a6) == 1) {
    if (family != 6) {
      throw_arg(env, "an IPv6 destination needs an IPv6 socket (listen on an IPv6 address or ::)");
      return 0;
    }
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    s6->sin6_addr = a6;
    *len = sizeof *s6;
    return 1;
  }
  char msg[160];
  snprintf(msg, sizeof msg, "\"%s\" is not an IP address", addr);
  throw_arg(env, msg);
  return 0;
}

static void set_buf_opt(int fd, int force_opt, int opt, int size) {
  if (size <= 0) return;
  if (setsockopt(fd, SOL_SOCKET, force_opt, &size, sizeof size) < 0) setsockopt(fd, SOL_SOCKET, opt, &size, sizeof size);
}

/* new Udp({ address, port, rcvbuf, sndbuf, gro, arena, meta, stats, stride, maxBatch,
 *           txDesc: Int32Array, txIov: Int32Array, txMax, txIovMax, maxDests }) */
static napi_value udp_ctor(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], self;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  if (argc < 1) {
    throw_arg(env, "new Udp(options) needs options");
    return NULL;
  }
  handle_t *h = new_handle(env, KIND_UDP);
  if (!h) {
    throw_sys(env, "ERR_UDP_OPEN", "calloc", ENOMEM, "udp");
    return NULL;
  }
  char addr[INET6_ADDRSTRLEN + 8];
  uint32_t port, rcvbuf, sndbuf, maxd;
  int alen = opt_string(env, argv[0], "address", addr, sizeof addr);
  if (alen <= 0) {
    discard_handle(env, h);
    throw_arg(env, alen == -2 ? "option address is too long to be an IP address" : "option address is required");
    return NULL;
  }
  if (!opt_u32(env, argv[0], "port", 0, &port) || !opt_u32(env, argv[0], "rcvbuf", 8 << 20, &rcvbuf) ||
      !opt_u32(env, argv[0], "sndbuf", 8 << 20, &sndbuf) || !opt_u32(env, argv[0], "maxDests", 256, &maxd) ||
      !opt_u32(env, argv[0], "txMax", 256, &h->tx_max) || !opt_u32(env, argv[0], "txIovMax", 1024, &h->tx_vec_max)) {
    discard_handle(env, h);
    return NULL;
  }
  char target[96];
  snprintf(target, sizeof target, "udp %s%s%s:%u", strchr(addr, ':') ? "[" : "", addr, strchr(addr, ':') ? "]" : "",
           port);
  snprintf(h->name, sizeof h->name, "udp:%u", port);
  if (port > 65535 || h->tx_max == 0 || h->tx_max > MAX_BATCH || h->tx_vec_max == 0 || maxd == 0 || maxd > 65536) {
    discard_handle(env, h);
    throw_arg(env, "udp: port must be 0..65535, txMax 1..1024, txIovMax and maxDests positive");
    return NULL;
  }
  if (!init_common(env, argv[0], h, RX_META_STRIDE, "udp")) {
    discard_handle(env, h);
    return NULL;
  }
  void *p;
  size_t len;
  if (!opt_bytes(env, argv[0], "txDesc", &p, &len, &h->tx_refs[0])) {
    discard_handle(env, h);
    return NULL;
  }
  h->tx_desc = p;
  h->tx_desc_len = len / 4;
  if (!opt_bytes(env, argv[0], "txIov", &p, &len, &h->tx_refs[1])) {
    discard_handle(env, h);
    return NULL;
  }
  h->tx_iovt = p;
  h->tx_iovt_len = len / 4;
  if (h->tx_desc_len < (size_t)h->tx_max * TX_DESC_STRIDE || h->tx_iovt_len < (size_t)h->tx_vec_max * TX_IOV_STRIDE) {
    discard_handle(env, h);
    throw_arg(env, "udp: txDesc needs txMax*4 and txIov needs txIovMax*3 int32 entries");
    return NULL;
  }
  h->gro = opt_bool(env, argv[0], "gro", 1);

  struct sockaddr_storage ss;
  socklen_t sl;
  struct in6_addr tmp6;
  h->family = inet_pton(AF_INET6, addr, &tmp6) == 1 ? 6 : 4;
  if (!make_sockaddr(env, addr, port, h->family, &ss, &sl)) {
    discard_handle(env, h);
    return NULL;
  }
  char nspath[PATH_MAX];
  int saved_ns;
  if (!opt_netns(env, argv[0], nspath, "ERR_UDP_OPEN")) {
    discard_handle(env, h);
    return NULL;
  }
  int nse = enter_netns(nspath, &saved_ns);
  if (nse) {
    discard_handle(env, h);
    throw_sys(env, "ERR_UDP_OPEN", "setns", nse, nspath);
    return NULL;
  }
  /* A socket belongs to the namespace it was created in; bind happens there too. */
  int fd = socket(h->family == 6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int sock_errno = errno;
  leave_netns(saved_ns);
  errno = sock_errno;
  if (fd < 0) {
    int e = errno;
    discard_handle(env, h);
    throw_sys(env, "ERR_UDP_OPEN", "socket", e, target);
    return NULL;
  }
  h->fd = fd;
  if (h->family == 6) {
    int off = 0;
    int on = IN6_IS_ADDR_UNSPECIFIED(&tmp6) ? 0 : 1;
    (void)off;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    int pmtu = IPV6_PMTUDISC_DO;
    setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &pmtu, sizeof pmtu);
  }
  {
    /* Never let the kernel fragment: weft fragments in userspace to the path MTU. */
    int pmtu = IP_PMTUDISC_DO;
    setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu);
  }
  set_buf_opt(fd, SO_RCVBUFFORCE, SO_RCVBUF, (int)rcvbuf);
  set_buf_opt(fd, SO_SNDBUFFORCE, SO_SNDBUF, (int)sndbuf);
  if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
    int e = errno;
    discard_handle(env, h);
    throw_sys(env, "ERR_UDP_BIND", "bind", e, target);
    return NULL;
  }
  if (h->gro) {
    int on = 1;
    if (setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on) < 0) h->gro = 0;
  }
  h->gso_ok = 1;
  h->ndests = maxd;
  h->rx_msgs = calloc(h->max_batch, sizeof *h->rx_msgs);
  h->rx_iov = calloc(h->max_batch, sizeof *h->rx_iov);
  h->rx_addr = calloc(h->max_batch, sizeof *h->rx_addr);
  h->rx_ctrl = calloc(h->max_batch, RX_CTRL_SZ);
  h->dests = calloc(maxd, sizeof *h->dests);
  h->dest_len = calloc(maxd, sizeof *h->dest_len);
  h->tx_msgs = calloc(h->tx_max, sizeof *h->tx_msgs);
  h->tx_vec = calloc(h->tx_vec_max + 64, sizeof *h->tx_vec);
  h->tx_ctrl = calloc(h->tx_max, TX_CTRL_SZ);
  if (!h->rx_msgs || !h->rx_iov || !h->rx_addr || !h->rx_ctrl || !h->dests || !h->dest_len || !h->tx_msgs ||
      !h->tx_vec || !h->tx_ctrl) {
    discard_handle(env, h);
    throw_sys(env, "ERR_UDP_OPEN", "calloc", ENOMEM, target);
    return NULL;
  }
  for (uint32_t i = 0; i < h->max_batch; i++) {
    h->rx_iov[i].iov_base = h->arena + (size_t)i * h->stride;
    h->rx_iov[i].iov_len = h->stride;
  }
  if (!wrap_handle(env, self, h)) return NULL;
  struct sockaddr_storage bound;
  socklen_t bl = sizeof bound;
  getsockname(fd, (struct sockaddr *)&bound, &bl);
  uint16_t bport = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                                : ntohs(((struct sockaddr_in *)&bound)->sin_port);
  napi_value v;
  napi_create_uint32(env, bport, &v);
  napi_set_named_property(env, self, "localPort", v);
  napi_create_uint32(env, (uint32_t)h->family, &v);
  napi_set_named_property(env, self, "family", v);
  napi_get_boolean(env, h->gro != 0, &v);
  napi_set_named_property(env, self, "gro", v);
  snprintf(h->name, sizeof h->name, "udp:%u", bport);
  return self;
}

/* setDest(index, address, port) */
static napi_value udp_set_dest(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  handle_t *h = unwrap_this(env, info, &argc, argv);
  if (!h) return NULL;
  uint32_t idx, port;
  char addr[INET6_ADDRSTRLEN + 8];
  size_t got;
  if (argc < 3 || napi_get_value_uint32(env, argv[0], &idx) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], addr, sizeof addr, &got) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &port) != napi_ok || idx >= h->ndests || port == 0 || port > 65535) {
    throw_arg(env, "setDest(index < maxDests, address, port 1..65535)");
    return NULL;
  }
  if (!make_sockaddr(env, addr, port, h->family, &h->dests[idx], &h->dest_len[idx])) return NULL;
  return NULL;
}

/* registerBuffer(id, buf): buffers that send descriptors refer to by id. */
static napi_value udp_register(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  handle_t *h = unwrap_this(env, info, &argc, argv);
  if (!h) return NULL;
  uint32_t id;
  void *data;
  size_t len;
  if (argc < 2 || napi_get_value_uint32(env, argv[0], &id) != napi_ok || id >= MAX_BUFS ||
      napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) {
    throw_arg(env, "registerBuffer(id < 8, Buffer)");
    return NULL;
  }
  if (h->buf_refs[id]) napi_delete_reference(env, h->buf_refs[id]);
  napi_create_reference(env, argv[1], 1, &h->buf_refs[id]);
  h->bufs[id] = data;
  h->buf_len[id] = len;
  return NULL;
}

/* Sends one GSO message as separate datagrams of `seg` bytes (the kernel refused GSO). A datagram
 * that needs more than SPLIT_MAX_IOV pieces is dropped whole and counted (ST_TX_IOV_LIMIT), never
 * sent short: its bytes are skipped and the next datagram starts where it would have. Returns the
 * number of datagrams not sent. */
static int send_split(handle_t *h, struct msghdr *mh, uint32_t seg) {
  size_t total = 0;
  for (size_t i = 0; i < mh->msg_iovlen; i++) total += mh->msg_iov[i].iov_len;
  size_t vi = 0, vo = 0;
  int errs = 0;
  for (size_t done = 0; done < total;) {
    struct iovec parts[SPLIT_MAX_IOV];
    int np = 0;
    size_t want = total - done < seg ? total - done : seg;
    size_t got = 0;
    while (got < want && vi < mh->msg_iovlen) {
      size_t avail = mh->msg_iov[vi].iov_len - vo;
      size_t take = avail < want - got ? avail : want - got;
      if (take > 0) {
        if (np < SPLIT_MAX_IOV) {
          parts[np].iov_base = (uint8_t *)mh->msg_iov[vi].iov_base + vo;
          parts[np].iov_len = take;
        }
        np++;
      }
      got += take;
      vo += take;
      if (vo == mh->msg_iov[vi].iov_len) {
        vi++;
        vo = 0;
      }
    }
    if (got == 0) break;
    done += got;
    if (np > SPLIT_MAX_IOV) {
      errs++;
      h->stats[ST_TX_IOV_LIMIT] += 1;
      h->stats[ST_LAST_ERRNO] = EMSGSIZE;
      continue;
    }
    struct msghdr one = {mh->msg_name, mh->msg_namelen, parts, (size_t)np, NULL, 0, 0};
    ssize_t r;
    do r = sendmsg(h->fd, &one, MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
      errs++;
      h->stats[ST_LAST_ERRNO] = errno;
    } else {
      h->stats[ST_TX_PACKETS] += 1;
      h->stats[ST_TX_BYTES] += (double)r;
    }
  }
  return errs;
}

/* send(count) -> messages handed to the kernel; failures and drops are counted in stats. */
static napi_value udp_send(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  handle_t *h = unwrap_this(env, info, &argc, argv);
  if (!h) return NULL;
  uint32_t count;
  if (argc < 1 || napi_get_value_uint32(env, argv[0], &count) != napi_ok || count > h->tx_max) {
    throw_arg(env, "send(count <= txMax)");
    return NULL;
  }
  napi_value v;
  if (h->closed) {
    h->stats[ST_TX_DROPPED] += count;
    napi_create_int32(env, 0, &v);
    return v;
  }
  size_t vec_used = 0;
  for (uint32_t i = 0; i < count; i++) {
    const int32_t *d = h->tx_desc + (size_t)i * TX_DESC_STRIDE;
    uint32_t is = (uint32_t)d[0], ic = (uint32_t)d[1], dst = (uint32_t)d[3];
    int32_t gso = d[2];
    if (ic == 0 || (size_t)is + ic > h->tx_vec_max || dst >= h->ndests || h->dest_len[dst] == 0 || gso < 0 ||
        gso > 65535 || vec_used + ic > h->tx_vec_max + 64) {
      throw_arg(env, "send: descriptor out of range (iov, destination or gso size)");
      return NULL;
    }
    if (ic > IOV_MAX) {
      /* The kernel refuses a message of more pieces (EMSGSIZE); nothing of the batch is sent. */
      char m[128];
      snprintf(m, sizeof m, "send: message %u has %u iovecs, more than the kernel takes (IOV_MAX %d)", i, ic, IOV_MAX);
      napi_throw_range_error(env, "ERR_UDP_IOV_LIMIT", m);
      return NULL;
    }
    struct iovec *vec = h->tx_vec + vec_used;
    for (uint32_t k = 0; k < ic; k++) {
      const int32_t *e = h->tx_iovt + (size_t)(is + k) * TX_IOV_STRIDE;
      uint32_t id = (uint32_t)e[0], off = (uint32_t)e[1], len = (uint32_t)e[2];
      if (id >= MAX_BUFS || !h->bufs[id] || (size_t)off + len > h->buf_len[id]) {
        throw_arg(env, "send: iov entry outside its registered buffer");
        return NULL;
      }
      vec[k].iov_base = h->bufs[id] + off;
      vec[k].iov_len = len;
    }
    vec_used += ic;
    struct msghdr *mh = &h->tx_msgs[i].msg_hdr;
    mh->msg_name = &h->dests[dst];
    mh->msg_namelen = h->dest_len[dst];
    mh->msg_iov = vec;
    mh->msg_iovlen = ic;
    mh->msg_flags = 0;
    if (gso > 0) {
      uint8_t *cb = h->tx_ctrl + (size_t)i * TX_CTRL_SZ;
      memset(cb, 0, TX_CTRL_SZ);
      mh->msg_control = cb;
      mh->msg_controllen = TX_CTRL_SZ;
      struct cmsghdr *c = CMSG_FIRSTHDR(mh);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t g = (uint16_t)gso;
      memcpy(CMSG_DATA(c), &g, sizeof g);
    } else {
      mh->msg_control = NULL;
      mh->msg_controllen = 0;
    }
  }
  uint32_t sent = 0, ok = 0;
  while (sent < count) {
    struct msghdr *mh = &h->tx_msgs[sent].msg_hdr;
    int32_t gso = h->tx_desc[(size_t)sent * TX_DESC_STRIDE + 2];
    if (gso > 0 && !h->gso_ok) {
      if (send_split(h, mh, (uint32_t)gso) == 0) ok++;
      else h->stats[ST_TX_ERRORS] += 1;
      sent++;
      continue;
    }
    int r = sendmmsg(h->fd, h->tx_msgs + sent, count - sent, MSG_DONTWAIT);
    if (r > 0) {
      for (int k = 0; k < r; k++) {
        h->stats[ST_TX_BYTES] += h->tx_msgs[sent + k].msg_len;
        int32_t g = h->tx_desc[(size_t)(sent + k) * TX_DESC_STRIDE + 2];
        h->stats[ST_TX_PACKETS] += g > 0 ? (h->tx_msgs[sent + k].msg_len + g - 1) / g : 1;
      }
      sent += r;
      ok += r;
      continue;
    }
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN || e == ENOBUFS) {
      h->stats[ST_TX_DROPPED] += count - sent;
      h->stats[ST_LAST_ERRNO] = e;
      break;
    }
    if (gso > 0 && (e == EIO || e == EOPNOTSUPP || e == ENOPROTOOPT)) {
      /* The route cannot do UDP GSO (no checksum offload): stop asking for it on this socket. */
      h->gso_ok = 0;
      h->stats[ST_GSO_FALLBACKS] += 1;
      continue;
    }
    if (gso > 0 && e == EINVAL) {
      /* gso size above the path MTU, or too many segments: try plain datagrams once. */
      h->stats[ST_GSO_FALLBACKS] += 1;
      if (send_split(h, mh, (uint32_t)gso) == 0) ok++;
      else h->stats[ST_TX_ERRORS] += 1;
      sent++;
      continue;
    }
    h->stats[ST_TX_ERRORS] += 1;
    h->stats[ST_LAST_ERRNO] = e;
    sent++; /* this message is lost (counted); the rest of the batch still goes */
  }
  napi_create_int32(env, (int32_t)ok, &v);
  return v;
}

static napi_value udp_gso(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  handle_t *h = unwrap_this(env, info, &argc, NULL);
  if (!h) return NULL;
  napi_value v;
  napi_get_boolean(env, h->gso_ok != 0, &v);
  return v;
}


/* ---------- AEAD (ChaCha20-Poly1305 from the OpenSSL that Node links and exports) ----------
 *
 * new Aead(key32): one encrypt and one decrypt context with the key schedule set once.
 * seal(buf, off, len, adBuf, adOff, ctrBuf, ctrOff) encrypts buf[off, off+len) in place,
 *   writes the 16-byte tag after it and returns len + 16.
 * open(buf, off, len, adBuf, adOff, ctrBuf, ctrOff) authenticates and decrypts in place;
 *   returns the plaintext length, or -1 (forged/damaged; the bytes are then garbage).
 * Nonce = 4 zero bytes + the 8 bytes ctrBuf[ctrOff, ctrOff+8) as they are (the big-endian 64-bit
 * counter, copied byte for byte: it never passes through a JS number); AD = adBuf[adOff, adOff+14).
 * Nothing is allocated per call; nothing throws on a bad message.
 */
#define AEAD_TAG 16
#define AEAD_AD 14

typedef struct {
  EVP_CIPHER_CTX *enc;
  EVP_CIPHER_CTX *dec;
} aead_t;

static void aead_free(aead_t *a) {
  if (a->enc) EVP_CIPHER_CTX_free(a->enc);
  if (a->dec) EVP_CIPHER_CTX_free(a->dec);
  a->enc = a->dec = NULL;
}

static void aead_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  aead_free((aead_t *)data);
  free(data);
}

static napi_value aead_ctor(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], self;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  void *key;
  size_t klen;
  if (argc < 1 || napi_get_buffer_info(env, argv[0], &key, &klen) != napi_ok || klen != 32) {
    throw_arg(env, "new Aead(key) needs a 32-byte Buffer");
    return NULL;
  }
  aead_t *a = calloc(1, sizeof *a);
  if (!a) {
    throw_sys(env, "ERR_AEAD", "calloc", ENOMEM, "aead");
    return NULL;
  }
  a->enc = EVP_CIPHER_CTX_new();
  a->dec = EVP_CIPHER_CTX_new();
  if (!a->enc || !a->dec || EVP_EncryptInit_ex(a->enc, EVP_chacha20_poly1305(), NULL, key, NULL) != 1 ||
      EVP_DecryptInit_ex(a->dec, EVP_chacha20_poly1305(), NULL, key, NULL) != 1) {
    aead_free(a);
    free(a);
    throw_sys(env, "ERR_AEAD", "EVP_CipherInit_ex(chacha20-poly1305)", EINVAL, "aead");
    return NULL;
  }
  if (napi_wrap(env, self, a, aead_finalize, NULL, NULL) != napi_ok) {
    aead_free(a);
    free(a);
    throw_arg(env, "cannot wrap Aead");
    return NULL;
  }
  return self;
}

/* Parses (buf, off, len, adBuf, adOff, ctrBuf, ctrOff); returns 0 and throws on misuse. */
static int aead_args(napi_env env, napi_callback_info info, aead_t **a, uint8_t **buf, size_t *blen, uint32_t *off,
                     uint32_t *len, uint8_t **ad, uint8_t nonce[12]) {
  size_t argc = 7;
  napi_value argv[7], self;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  void *d, *adb, *ctrb;
  size_t adlen, ctrlen;
  uint32_t adoff, ctroff;
  if (argc < 7 || napi_unwrap(env, self, (void **)a) != napi_ok || !(*a)->enc ||
      napi_get_buffer_info(env, argv[0], &d, blen) != napi_ok || napi_get_value_uint32(env, argv[1], off) != napi_ok ||
      napi_get_value_uint32(env, argv[2], len) != napi_ok || napi_get_buffer_info(env, argv[3], &adb, &adlen) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &adoff) != napi_ok || napi_get_buffer_info(env, argv[5], &ctrb, &ctrlen) != napi_ok ||
      napi_get_value_uint32(env, argv[6], &ctroff) != napi_ok) {
    throw_arg(env, "seal/open(buf, off, len, adBuf, adOff, ctrBuf, ctrOff)");
    return 0;
  }
  if ((size_t)adoff + AEAD_AD > adlen) {
    throw_arg(env, "seal/open: AD outside its buffer");
    return 0;
  }
  if ((size_t)ctroff + 8 > ctrlen) {
    throw_arg(env, "seal/open: counter outside its buffer");
    return 0;
  }
  *buf = d;
  *ad = (uint8_t *)adb + adoff;
  memset(nonce, 0, 4);
  memcpy(nonce + 4, (uint8_t *)ctrb + ctroff, 8);
  return 1;
}

static napi_value aead_seal(napi_env env, napi_callback_info info) {
  aead_t *a;
  uint8_t *buf, *ad, nonce[12];
  size_t blen;
  uint32_t off, len;
  if (!aead_args(env, info, &a, &buf, &blen, &off, &len, &ad, nonce)) return NULL;
  if ((size_t)off + len + AEAD_TAG > blen) {
    throw_arg(env, "seal: no room for the tag after the message");
    return NULL;
  }
  int outl, r = -1;
  uint8_t *m = buf + off;
  if (EVP_EncryptInit_ex(a->enc, NULL, NULL, NULL, nonce) == 1 && EVP_EncryptUpdate(a->enc, NULL, &outl, ad, AEAD_AD) == 1 &&
      EVP_EncryptUpdate(a->enc, m, &outl, m, (int)len) == 1 && EVP_EncryptFinal_ex(a->enc, m + len, &outl) == 1 &&
      EVP_CIPHER_CTX_ctrl(a->enc, EVP_CTRL_AEAD_GET_TAG, AEAD_TAG, m + len) == 1)
    r = (int)len + AEAD_TAG;
  napi_value v;
  napi_create_int32(env, r, &v);
  return v;
}

static napi_value aead_open(napi_env env, napi_callback_info info) {
  aead_t *a;
  uint8_t *buf, *ad, nonce[12];
  size_t blen;
  uint32_t off, len;
  if (!aead_args(env, info, &a, &buf, &blen, &off, &len, &ad, nonce)) return NULL;
  int r = -1;
  if (len >= AEAD_TAG && (size_t)off + len <= blen) {
    int outl;
    uint8_t *c = buf + off;
    int n = (int)len - AEAD_TAG;
    if (EVP_DecryptInit_ex(a->dec, NULL, NULL, NULL, nonce) == 1 && EVP_DecryptUpdate(a->dec, NULL, &outl, ad, AEAD_AD) == 1 &&
        EVP_DecryptUpdate(a->dec, c, &outl, c, n) == 1 &&
        EVP_CIPHER_CTX_ctrl(a->dec, EVP_CTRL_AEAD_SET_TAG, AEAD_TAG, c + n) == 1 &&
        EVP_DecryptFinal_ex(a->dec, c + n, &outl) == 1)
      r = n;
  }
  napi_value v;
  napi_create_int32(env, r, &v);
  return v;
}

/* destroy(): frees the contexts (and the key schedule in them) now rather than at GC. */
static napi_value aead_destroy(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value self;
  aead_t *a;
  napi_get_cb_info(env, info, &argc, NULL, &self, NULL);
  if (napi_unwrap(env, self, (void **)&a) == napi_ok) aead_free(a);
  return NULL;
}

/* ---------- module ---------- */

static napi_value set_spin(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t us = 0;
  if (argc < 1 || napi_get_value_uint32(env, argv[0], &us) != napi_ok || us > 1000) {
    throw_arg(env, "setSpin(microseconds 0..1000)");
    return NULL;
  }
  addon_t *a;
  napi_get_instance_data(env, (void **)&a);
  a->spin_ns = (int64_t)us * 1000;
  return NULL;
}

static napi_value define(napi_env env, const char *name, napi_callback ctor, napi_property_descriptor *props,
                         size_t n) {
  napi_value cls;
  napi_define_class(env, name, NAPI_AUTO_LENGTH, ctor, NULL, n, props, &cls);
  return cls;
}

#define METHOD(n, f) {n, NULL, f, NULL, NULL, NULL, napi_default_method, NULL}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  addon_t *a = calloc(1, sizeof *a);
  a->env = env;
  napi_set_instance_data(env, a, addon_finalize, NULL);
  napi_add_async_cleanup_hook(env, addon_cleanup, a, &a->cleanup);

  napi_property_descriptor tap_props[] = {
      METHOD("start", m_start), METHOD("stop", m_stop),     METHOD("close", m_close),
      METHOD("fd", m_fd),       METHOD("write", tap_write), METHOD("pollNow", m_poll_now),
  };
  napi_property_descriptor udp_props[] = {
      METHOD("start", m_start),     METHOD("stop", m_stop),
      METHOD("close", m_close),     METHOD("fd", m_fd),
      METHOD("setDest", udp_set_dest), METHOD("registerBuffer", udp_register),
      METHOD("send", udp_send),     METHOD("gsoActive", udp_gso),
      METHOD("pollNow", m_poll_now),
  };
  napi_value tap = define(env, "Tap", tap_ctor, tap_props, sizeof tap_props / sizeof tap_props[0]);
  napi_value udp = define(env, "Udp", udp_ctor, udp_props, sizeof udp_props / sizeof udp_props[0]);
  napi_set_named_property(env, exports, "Tap", tap);
  napi_set_named_property(env, exports, "Udp", udp);
  napi_property_descriptor aead_props[] = {
      METHOD("seal", aead_seal), METHOD("open", aead_open), METHOD("destroy", aead_destroy),
  };
  napi_value aead = define(env, "Aead", aead_ctor, aead_props, sizeof aead_props / sizeof aead_props[0]);
  napi_set_named_property(env, exports, "Aead", aead);
  napi_value ov;
  napi_create_string_utf8(env, OpenSSL_version(OPENSSL_VERSION), NAPI_AUTO_LENGTH, &ov);
  napi_set_named_property(env, exports, "opensslVersion", ov);
  napi_value fn;
  napi_create_function(env, "setSpin", NAPI_AUTO_LENGTH, set_spin, NULL, &fn);
  napi_set_named_property(env, exports, "setSpin", fn);
  napi_value c;
  napi_create_uint32(env, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN, &c);
  napi_set_named_property(env, exports, "TUN_OFFLOADS_TSO", c);
  napi_create_uint32(env, ST_COUNT, &c);
  napi_set_named_property(env, exports, "STATS_SIZE", c);
  rtnl_register(env, exports);
  return exports;
}
