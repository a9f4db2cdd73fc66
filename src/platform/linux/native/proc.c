/*
 * execve(path, argv, env): replaces this process's image, keeping its PID (Node 20 has no
 * process.execve). The router uses it once, first thing in `weft launch`, to run itself again
 * under the V8 and malloc settings it needs (src/cli/router-runtime.ts); systemd, the lab and
 * anything else that holds the PID see the same process. argv and env are arrays of strings (env
 * entries "NAME=value"). Returns only on failure, throwing an Error with code ERR_EXEC, the errno
 * and the path. The caller must call it before opening anything it would leak: descriptors without
 * close-on-exec survive the exec. Node marks its standard descriptors close-on-exec at start; they
 * are cleared here so the new image writes where this one did (else Node would give it /dev/null).
 *
 * mallocTrim(): glibc's malloc_trim(0). glibc gives memory back to the kernel only from the top
 * of an arena; the free pages between live blocks (V8's compiler zones, OpenSSL and start-up
 * allocations, freed) stay resident until this is called: about 3 MB of a router's RSS after
 * start (measured with gdb on a running router, 2026-12-04). Returns whether anything was
 * released. It holds each arena's lock while it walks it, so the router calls it rarely, off
 * the data path's hot moments (src/daemon/memory-trim.ts).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "napi_util.h"
#include "proc.h"

#define MAX_STRINGS 4096
#define MAX_STRING (1 << 20)

static void free_list(char **list) {
  if (!list) return;
  for (char **p = list; *p; p++) free(*p);
  free(list);
}

/* A NULL-terminated copy of a JS array of strings; NULL (and a thrown error) on misuse. */
static char **string_list(napi_env env, napi_value arr, const char *what) {
  bool is_array = false;
  uint32_t n = 0;
  if (napi_is_array(env, arr, &is_array) != napi_ok || !is_array || napi_get_array_length(env, arr, &n) != napi_ok ||
      n > MAX_STRINGS) {
    throw_arg(env, what);
    return NULL;
  }
  char **list = calloc((size_t)n + 1, sizeof *list);
  if (!list) {
    throw_sys(env, "ERR_EXEC", "calloc", ENOMEM, "execve");
    return NULL;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    size_t len = 0;
    if (napi_get_element(env, arr, i, &v) != napi_ok || napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok ||
        len > MAX_STRING) {
      free_list(list);
      throw_arg(env, what);
      return NULL;
    }
    list[i] = malloc(len + 1);
    if (!list[i] || napi_get_value_string_utf8(env, v, list[i], len + 1, &len) != napi_ok || strlen(list[i]) != len) {
      free_list(list);
      throw_arg(env, what);
      return NULL;
    }
  }
  return list;
}

static napi_value m_execve(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char path[4096];
  size_t plen = 0;
  if (argc < 3 || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &plen) != napi_ok || plen == 0 ||
      plen >= sizeof path - 1 || strlen(path) != plen) {
    throw_arg(env, "execve(path, argv, env): path must be a non-empty string without NUL");
    return NULL;
  }
  char **args = string_list(env, argv[1], "execve(path, argv, env): argv must be an array of strings without NUL");
  if (!args) return NULL;
  if (!args[0]) {
    free_list(args);
    throw_arg(env, "execve(path, argv, env): argv needs at least the program name");
    return NULL;
  }
  char **envp = string_list(env, argv[2], "execve(path, argv, env): env must be an array of NAME=value strings without NUL");
  if (!envp) {
    free_list(args);
    return NULL;
  }
  int saved[3];
  for (int fd = 0; fd < 3; fd++) {
    saved[fd] = fcntl(fd, F_GETFD);
    if (saved[fd] >= 0 && (saved[fd] & FD_CLOEXEC)) fcntl(fd, F_SETFD, saved[fd] & ~FD_CLOEXEC);
  }
  execve(path, args, envp);
  int err = errno;
  for (int fd = 0; fd < 3; fd++)
    if (saved[fd] >= 0) fcntl(fd, F_SETFD, saved[fd]);
  free_list(args);
  free_list(envp);
  throw_sys(env, "ERR_EXEC", "execve", err, path);
  return NULL;
}

static napi_value m_malloc_trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  napi_get_boolean(env, malloc_trim(0) != 0, &out);
  return out;
}

void proc_register(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "execve", NAPI_AUTO_LENGTH, m_execve, NULL, &fn);
  napi_set_named_property(env, exports, "execve", fn);
  napi_create_function(env, "mallocTrim", NAPI_AUTO_LENGTH, m_malloc_trim, NULL, &fn);
  napi_set_named_property(env, exports, "mallocTrim", fn);
}
