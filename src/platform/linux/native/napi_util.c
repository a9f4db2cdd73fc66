/* N-API helpers: errors with codes, option parsing (see napi_util.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "napi_util.h"

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

static int has_prop(napi_env env, napi_value obj, const char *key, napi_value *out) {
  bool has = false;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok || !has) return 0;
  napi_get_named_property(env, obj, key, out);
  napi_valuetype t;
  napi_typeof(env, *out, &t);
  return t != napi_undefined && t != napi_null;
}

int opt_u32(napi_env env, napi_value obj, const char *key, uint32_t dflt, uint32_t *out) {
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

int opt_bool(napi_env env, napi_value obj, const char *key, int dflt) {
  napi_value v;
  bool b;
  if (!has_prop(env, obj, key, &v)) return dflt;
  if (napi_get_value_bool(env, v, &b) != napi_ok) return dflt;
  return b ? 1 : 0;
}

/* The string option `key` into buf: its length, 0 when absent, -1 when not a string, -2 when it
 * does not fit in len - 1 bytes (never truncated). */
int opt_string(napi_env env, napi_value obj, const char *key, char *buf, size_t len) {
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
int opt_netns(napi_env env, napi_value obj, char *buf, const char *code) {
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
int opt_bytes(napi_env env, napi_value obj, const char *key, void **data, size_t *len, napi_ref *ref) {
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
