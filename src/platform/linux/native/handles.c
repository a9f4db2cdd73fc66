/*
 * Handle lifecycle (see handles.h). A handle is freed when both its uv poll has closed and its JS
 * object is finalized, whichever comes last.
 *
 * Lifecycle: an async cleanup hook stops and closes every handle when the env ends, so
 * process.exit() and worker termination never hang on an open poll.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "handles.h"
#include "uring.h"
#include "napi_util.h"

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
  /* The ring first: it holds a reference to the TAP's file (no read is ever in flight, uring.h). */
  uring_close(h->ring);
  h->ring = NULL;
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

void deliver(handle_t *h, int32_t count) {
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


napi_value m_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  handle_t *h = unwrap_this(env, info, &argc, NULL);
  if (!h) return NULL;
  close_handle(h, 1);
  return NULL;
}

napi_value m_fd(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  handle_t *h = unwrap_this(env, info, &argc, NULL);
  if (!h) return NULL;
  napi_value v;
  napi_create_int32(env, h->fd, &v);
  return v;
}

/* Shared constructor part: arena/meta/stats/batch geometry. */
int init_common(napi_env env, napi_value opts, handle_t *h, size_t meta_per_item, const char *what) {
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

handle_t *new_handle(napi_env env, int kind) {
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

void discard_handle(napi_env env, handle_t *h) {
  close_handle(h, 1);
  h->js_done = 1;
  (void)env;
  maybe_free(h);
}

int wrap_handle(napi_env env, napi_value self, handle_t *h) {
  if (napi_wrap(env, self, h, finalize_handle, NULL, &h->wrapper) != napi_ok) {
    discard_handle(env, h);
    throw_arg(env, "cannot wrap native handle");
    return 0;
  }
  return 1;
}

void handles_init(napi_env env) {
  addon_t *a = calloc(1, sizeof *a);
  a->env = env;
  napi_set_instance_data(env, a, addon_finalize, NULL);
  napi_add_async_cleanup_hook(env, addon_cleanup, a, &a->cleanup);
}
