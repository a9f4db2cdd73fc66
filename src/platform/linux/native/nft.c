/*
 * nftables transactions in-process, through libnftables (Debian's libnftables1), loaded with
 * dlopen at first use so that the addon neither needs its headers to build nor the library to run.
 *
 *   nftRun(script, json, cb({ ok, rc, output, error }))
 *
 * runs `script` (nft syntax, as `nft -f -` reads it) on the libuv thread pool with
 * nft_run_cmd_from_buffer: one call is one transaction, as with the command. json asks for JSON
 * output (what `nft -j` gives, for `list`). ok is false when the library could not be loaded
 * (error then says why, rc is -1) or nft refused the script (rc its non-zero return, error its
 * message as the command would print it). output is what a `list` printed.
 *
 * One context for the process, made on the first call (on a pool thread: it opens its netlink
 * socket in that thread's network namespace, the process's) and used by one call at a time (a
 * mutex; the JS side queues too). Its output and error are buffered by the library and copied
 * out before the mutex is released.
 *
 * The prototypes below are those of libnftables(3); the context is opaque to us.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>

#include "napi_util.h"
#include "nft.h"

#define NFT_LIBRARY "libnftables.so.1"
#define NFT_CTX_DEFAULT 0u
#define NFT_CTX_OUTPUT_JSON (1u << 4)
#define MAX_SCRIPT (64u << 20)

struct nft_ctx;

static struct {
  struct nft_ctx *(*ctx_new)(uint32_t flags);
  void (*ctx_free)(struct nft_ctx *ctx);
  int (*buffer_output)(struct nft_ctx *ctx);
  int (*buffer_error)(struct nft_ctx *ctx);
  const char *(*get_output)(struct nft_ctx *ctx);
  const char *(*get_error)(struct nft_ctx *ctx);
  void (*set_flags)(struct nft_ctx *ctx, unsigned int flags);
  int (*run)(struct nft_ctx *ctx, const char *buf);
} lib;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *handle;
static struct nft_ctx *ctx;
/* Why the library or the context cannot be had; kept: a failed load is not retried. */
static char load_error[512];

typedef struct {
  napi_async_work work;
  napi_ref cb;
  char *script;
  bool json;
  int rc;
  bool ok;
  char *output;
  char *error;
} run_t;

static bool sym(void **slot, const char *name) {
  *slot = dlsym(handle, name);
  if (*slot == NULL) {
    snprintf(load_error, sizeof load_error, "%s has no symbol %s", NFT_LIBRARY, name);
    return false;
  }
  return true;
}

/* Loads the library and makes the context; false with load_error set when it cannot. Under lock. */
static bool load(void) {
  if (ctx != NULL) return true;
  if (load_error[0] != 0) return false;
  handle = dlopen(NFT_LIBRARY, RTLD_NOW | RTLD_LOCAL);
  if (handle == NULL) {
    const char *e = dlerror();
    snprintf(load_error, sizeof load_error, "cannot load %s: %s", NFT_LIBRARY, e ? e : "unknown error");
    return false;
  }
  if (!sym((void **)&lib.ctx_new, "nft_ctx_new") || !sym((void **)&lib.ctx_free, "nft_ctx_free") ||
      !sym((void **)&lib.buffer_output, "nft_ctx_buffer_output") || !sym((void **)&lib.buffer_error, "nft_ctx_buffer_error") ||
      !sym((void **)&lib.get_output, "nft_ctx_get_output_buffer") || !sym((void **)&lib.get_error, "nft_ctx_get_error_buffer") ||
      !sym((void **)&lib.set_flags, "nft_ctx_output_set_flags") || !sym((void **)&lib.run, "nft_run_cmd_from_buffer")) {
    dlclose(handle);
    handle = NULL;
    return false;
  }
  /* nft_ctx_new exits the process when it cannot open its netlink socket: try one first. */
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (s < 0) {
    snprintf(load_error, sizeof load_error, "cannot open a netfilter netlink socket: %s (%s)", strerror(errno), errno_name(errno));
    return false;
  }
  close(s);
  struct nft_ctx *c = lib.ctx_new(NFT_CTX_DEFAULT);
  if (c == NULL) {
    snprintf(load_error, sizeof load_error, "nft_ctx_new failed");
    return false;
  }
  if (lib.buffer_output(c) != 0 || lib.buffer_error(c) != 0) {
    lib.ctx_free(c);
    snprintf(load_error, sizeof load_error, "cannot buffer the output of libnftables");
    return false;
  }
  ctx = c;
  return true;
}

static char *copy(const char *s) {
  return strdup(s == NULL ? "" : s);
}

static void run_execute(napi_env env, void *data) {
  run_t *r = data;
  pthread_mutex_lock(&lock);
  if (!load()) {
    r->rc = -1;
    r->error = copy(load_error);
  } else {
    lib.set_flags(ctx, r->json ? NFT_CTX_OUTPUT_JSON : 0);
    r->rc = lib.run(ctx, r->script);
    r->ok = r->rc == 0;
    /* both read every time: reading rewinds the buffer for the next call */
    r->output = copy(lib.get_output(ctx));
    r->error = copy(lib.get_error(ctx));
  }
  pthread_mutex_unlock(&lock);
}

static void run_complete(napi_env env, napi_status status, void *data) {
  run_t *r = data;
  napi_value cb, global, res, v;
  napi_get_reference_value(env, r->cb, &cb);
  napi_get_global(env, &global);
  napi_create_object(env, &res);
  napi_get_boolean(env, r->ok && status == napi_ok, &v);
  napi_set_named_property(env, res, "ok", v);
  napi_create_int32(env, r->rc, &v);
  napi_set_named_property(env, res, "rc", v);
  napi_create_string_utf8(env, r->output ? r->output : "", NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, res, "output", v);
  const char *err = r->error ? r->error : (r->output == NULL ? "out of memory" : "");
  napi_create_string_utf8(env, err, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, res, "error", v);
  napi_call_function(env, global, cb, 1, &res, NULL);
  napi_delete_reference(env, r->cb);
  napi_delete_async_work(env, r->work);
  free(r->script);
  free(r->output);
  free(r->error);
  free(r);
}

static napi_value nft_run(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_valuetype st = napi_undefined, jt = napi_undefined, ct = napi_undefined;
  if (argc == 3) {
    napi_typeof(env, argv[0], &st);
    napi_typeof(env, argv[1], &jt);
    napi_typeof(env, argv[2], &ct);
  }
  size_t len = 0;
  if (st != napi_string || jt != napi_boolean || ct != napi_function || napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok ||
      len > MAX_SCRIPT) {
    throw_arg(env, "nftRun(script: string (64 MiB at most), json: boolean, cb: Function)");
    return NULL;
  }
  run_t *r = calloc(1, sizeof *r);
  if (r != NULL) r->script = malloc(len + 1);
  if (r == NULL || r->script == NULL) {
    free(r);
    napi_throw_error(env, "ERR_NO_MEMORY", "nftRun: out of memory");
    return NULL;
  }
  size_t got;
  napi_get_value_string_utf8(env, argv[0], r->script, len + 1, &got);
  if (strlen(r->script) != got) {
    /* nft reads up to the first NUL: a script with one would run only its head */
    free(r->script);
    free(r);
    throw_arg(env, "nftRun: the script contains a NUL character");
    return NULL;
  }
  napi_get_value_bool(env, argv[1], &r->json);
  napi_create_reference(env, argv[2], 1, &r->cb);
  napi_value name;
  napi_create_string_utf8(env, "weft:nft", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, run_execute, run_complete, r, &r->work);
  napi_queue_async_work(env, r->work);
  return NULL;
}

void nft_register(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "nftRun", NAPI_AUTO_LENGTH, nft_run, NULL, &fn);
  napi_set_named_property(env, exports, "nftRun", fn);
}
