/*
 * The read side (see loop.h): a level-triggered uv_poll on each handle's non-blocking fd. Each
 * wakeup reads one batch into the handle's JS-owned arena at a fixed stride (tap_batch in tap.h,
 * udp_batch in udp.h), writes per-item metadata into its JS-owned Int32Array and makes ONE JS
 * callback with the item count. A negative count reports an error (-errno).
 *
 * Errors: POLLERR makes libuv stop the poll; we read SO_ERROR, count it and re-arm.
 *
 * Latency: optionally (setSpin), after a batch the thread polls every open handle of this env for
 * up to spinUs of idleness (capped at 1 ms per wakeup) before returning to libuv, saving a sleep
 * and wakeup per packet at low rates.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <uv.h>

#include "handles.h"
#include "loop.h"
#include "napi_util.h"
#include "tap.h"
#include "udp.h"

#define SPIN_CAP_NS 1000000LL

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
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

napi_value m_start(napi_env env, napi_callback_info info) {
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

napi_value m_stop(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  handle_t *h = unwrap_this(env, info, &argc, NULL);
  if (!h) return NULL;
  if (h->polling) uv_poll_stop(&h->poll);
  h->polling = 0;
  return NULL;
}

napi_value m_poll_now(napi_env env, napi_callback_info info) {
  /* Reads one batch synchronously (tests and shutdown drains); returns the item count. */
  size_t argc = 0;
  handle_t *h = unwrap_this(env, info, &argc, NULL);
  if (!h) return NULL;
  napi_value v;
  napi_create_int32(env, h->closed ? 0 : run_batch(h), &v);
  return v;
}

napi_value set_spin(napi_env env, napi_callback_info info) {
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
