/*
 * A file replaced atomically and durably in one job on the thread pool, instead of one job per
 * system call (the IPAM state, written before each allocation is answered, is on CNI ADD's path):
 *
 *   atomicWrite(path, data, mode, cb({ errno, code, syscall, message }))
 *
 * writes data to "<path>.tmp-<pid>" (created with mode), fsyncs it, renames it over path and
 * fsyncs the directory. errno is 0 on success, else the failing call's (syscall names it: open,
 * write, fsync, rename, open directory, fsync directory); the temporary file is then removed.
 * Nothing else writes the temporary file: one call at a time per path is the caller's rule.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"
#include "napi_util.h"

typedef struct {
  napi_async_work work;
  napi_ref cb;
  char path[PATH_MAX];
  char tmp[PATH_MAX + 32];
  unsigned mode;
  void *data;
  size_t len;
  int err;
  const char *syscall;
} write_t;

static int fail(write_t *w, const char *syscall) {
  w->err = errno;
  w->syscall = syscall;
  return -1;
}

static int replace(write_t *w) {
  int fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, w->mode);
  if (fd < 0) return fail(w, "open");
  size_t off = 0;
  while (off < w->len) {
    ssize_t n = write(fd, (const char *)w->data + off, w->len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      fail(w, "write");
      close(fd);
      return -1;
    }
    off += (size_t)n;
  }
  if (fsync(fd) < 0) {
    fail(w, "fsync");
    close(fd);
    return -1;
  }
  if (close(fd) < 0) return fail(w, "close");
  if (rename(w->tmp, w->path) < 0) return fail(w, "rename");
  char dir[PATH_MAX];
  memcpy(dir, w->path, sizeof dir);
  int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return fail(w, "open directory");
  int r = fsync(dfd);
  if (r < 0) fail(w, "fsync directory");
  close(dfd);
  return r;
}

static void write_execute(napi_env env, void *data) {
  write_t *w = data;
  if (replace(w) < 0 && w->syscall != NULL && strcmp(w->syscall, "fsync directory") != 0) unlink(w->tmp);
}

static void write_complete(napi_env env, napi_status status, void *data) {
  write_t *w = data;
  napi_value cb, global, res, v;
  napi_get_reference_value(env, w->cb, &cb);
  napi_get_global(env, &global);
  napi_create_object(env, &res);
  napi_create_int32(env, w->err, &v);
  napi_set_named_property(env, res, "errno", v);
  napi_create_string_utf8(env, w->err ? errno_name(w->err) : "", NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, res, "code", v);
  napi_create_string_utf8(env, w->syscall ? w->syscall : "", NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, res, "syscall", v);
  napi_create_string_utf8(env, w->err ? strerror(w->err) : "", NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, res, "message", v);
  napi_call_function(env, global, cb, 1, &res, NULL);
  napi_delete_reference(env, w->cb);
  napi_delete_async_work(env, w->work);
  free(w->data);
  free(w);
}

static napi_value atomic_write(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_valuetype pt = napi_undefined, ct = napi_undefined;
  bool is_ta = false;
  uint32_t mode = 0;
  size_t plen = 0;
  if (argc == 4) {
    napi_typeof(env, argv[0], &pt);
    napi_is_typedarray(env, argv[1], &is_ta);
    napi_typeof(env, argv[3], &ct);
  }
  if (pt != napi_string || !is_ta || ct != napi_function || napi_get_value_uint32(env, argv[2], &mode) != napi_ok || mode > 07777 ||
      napi_get_value_string_utf8(env, argv[0], NULL, 0, &plen) != napi_ok || plen == 0 || plen >= PATH_MAX) {
    throw_arg(env, "atomicWrite(path: string (1..PATH_MAX-1 bytes), data: Uint8Array, mode: 0..0o7777, cb: Function)");
    return NULL;
  }
  napi_typedarray_type type;
  size_t n, off;
  void *bytes;
  napi_value ab;
  napi_get_typedarray_info(env, argv[1], &type, &n, &bytes, &ab, &off);
  if (type != napi_uint8_array) {
    throw_arg(env, "atomicWrite: data must be a Uint8Array or Buffer");
    return NULL;
  }
  write_t *w = calloc(1, sizeof *w);
  if (w != NULL) w->data = malloc(n ? n : 1);
  if (w == NULL || w->data == NULL) {
    if (w) free(w);
    napi_throw_error(env, "ERR_NO_MEMORY", "atomicWrite: out of memory");
    return NULL;
  }
  size_t got;
  napi_get_value_string_utf8(env, argv[0], w->path, sizeof w->path, &got);
  if (strlen(w->path) != got) {
    free(w->data);
    free(w);
    throw_arg(env, "atomicWrite: the path contains a NUL character");
    return NULL;
  }
  snprintf(w->tmp, sizeof w->tmp, "%s.tmp-%d", w->path, (int)getpid());
  memcpy(w->data, bytes, n);
  w->len = n;
  w->mode = mode;
  napi_create_reference(env, argv[3], 1, &w->cb);
  napi_value name;
  napi_create_string_utf8(env, "weft:atomicWrite", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, write_execute, write_complete, w, &w->work);
  napi_queue_async_work(env, w->work);
  return NULL;
}

void file_register(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "atomicWrite", NAPI_AUTO_LENGTH, atomic_write, NULL, &fn);
  napi_set_named_property(env, exports, "atomicWrite", fn);
}
