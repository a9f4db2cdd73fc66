/*
 * nftables transactions in-process, through libnftables (Debian's libnftables1), loaded with
 * dlopen at first use so that the addon neither needs its headers to build nor the library to run.
 *
 *   nftRun(script, json, cb({ loaded, ok, rc, output, error }))
 *
 * runs `script` (nft syntax, as `nft -f -` reads it) on the libuv thread pool, as a file (a
 * memfd, see run_script): one call is one transaction, as with the command. json asks for JSON
 * output (what `nft -j` gives, for `list`). loaded is false when the library or its context
 * could not be had (error says why; a failed load is not retried). ok is false when it could not
 * or nft refused the script (rc its non-zero return, error its message as the command prints it,
 * the script named "script" where the command says "/dev/stdin"). output is what a `list` printed.
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
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>

#include "napi_util.h"
#include "nft.h"

#define NFT_LIBRARY "libnftables.so.1"
#define NFT_CTX_DEFAULT 0u
#define NFT_CTX_OUTPUT_JSON (1u << 4)
#define MAX_SCRIPT (64u << 20)
/* How errors name the script (nft itself names the file it read). */
#define SCRIPT_NAME "script"

struct nft_ctx;

static struct {
  struct nft_ctx *(*ctx_new)(uint32_t flags);
  void (*ctx_free)(struct nft_ctx *ctx);
  int (*buffer_output)(struct nft_ctx *ctx);
  int (*buffer_error)(struct nft_ctx *ctx);
  const char *(*get_output)(struct nft_ctx *ctx);
  const char *(*get_error)(struct nft_ctx *ctx);
  void (*set_flags)(struct nft_ctx *ctx, unsigned int flags);
  int (*run_file)(struct nft_ctx *ctx, const char *filename);
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
  bool loaded;
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
      !sym((void **)&lib.set_flags, "nft_ctx_output_set_flags") || !sym((void **)&lib.run_file, "nft_run_cmd_from_filename")) {
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

/* The error text with the script's name (a /proc path) replaced by SCRIPT_NAME. */
static char *rename_script(const char *text, const char *path) {
  size_t plen = strlen(path), nlen = strlen(SCRIPT_NAME), n = 0;
  for (const char *p = strstr(text, path); p != NULL; p = strstr(p + plen, path)) n++;
  char *out = malloc(strlen(text) + n * nlen + 1);
  if (out == NULL) return NULL;
  char *o = out;
  for (const char *p = text, *q; *p != 0; p = q + plen) {
    q = strstr(p, path);
    if (q == NULL) {
      strcpy(o, p);
      return out;
    }
    memcpy(o, p, (size_t)(q - p));
    o += q - p;
    memcpy(o, SCRIPT_NAME, nlen);
    o += nlen;
  }
  *o = 0;
  return out;
}

/*
 * Runs the script as a file (a memfd), as `nft -f` does: with a buffer, libnftables 1.0.6 quotes
 * the first line of the script in every error, whichever line failed; from a file it names the
 * line and quotes it. Under lock, with the context made.
 */
static void run_script(run_t *r) {
  int fd = memfd_create("weft-nft-script", MFD_CLOEXEC);
  if (fd < 0) {
    r->rc = -1;
    r->error = malloc(160);
    if (r->error) snprintf(r->error, 160, "memfd_create for the script: %s (%s)", strerror(errno), errno_name(errno));
    return;
  }
  size_t len = strlen(r->script), off = 0;
  while (off < len) {
    ssize_t n = write(fd, r->script + off, len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      r->rc = -1;
      r->error = malloc(160);
      if (r->error) snprintf(r->error, 160, "writing the script to a memfd: %s (%s)", strerror(errno), errno_name(errno));
      close(fd);
      return;
    }
    off += (size_t)n;
  }
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  lib.set_flags(ctx, r->json ? NFT_CTX_OUTPUT_JSON : 0);
  r->rc = lib.run_file(ctx, path);
  r->ok = r->rc == 0;
  /* both read every time: reading one rewinds it for the next call */
  r->output = copy(lib.get_output(ctx));
  const char *err = lib.get_error(ctx); /* once: reading it empties it */
  r->error = rename_script(err ? err : "", path);
  close(fd);
}

static void run_execute(napi_env env, void *data) {
  run_t *r = data;
  pthread_mutex_lock(&lock);
  if (!load()) {
    r->rc = -1;
    r->error = copy(load_error);
  } else {
    r->loaded = true;
    run_script(r);
  }
  pthread_mutex_unlock(&lock);
}

static void run_complete(napi_env env, napi_status status, void *data) {
  run_t *r = data;
  napi_value cb, global, res, v;
  napi_get_reference_value(env, r->cb, &cb);
  napi_get_global(env, &global);
  napi_create_object(env, &res);
  napi_get_boolean(env, r->loaded, &v);
  napi_set_named_property(env, res, "loaded", v);
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
