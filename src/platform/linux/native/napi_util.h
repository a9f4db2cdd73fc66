/*
 * N-API helpers under every other part of the addon: errors that carry a code and name the
 * failing syscall, and the option parsing of the constructors. Nothing here runs per packet
 * (throw_arg only on misuse). Includes no other header of the addon.
 */
#ifndef WEFT_NAPI_UTIL_H
#define WEFT_NAPI_UTIL_H
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(hidden)

/* The errno's name ("ENOENT"), "EUNKNOWN" for one the C library does not know. */
const char *errno_name(int e);
/* Throws an Error with code, syscall, errno, errnoName, target and detail. */
void throw_sys(napi_env env, const char *code, const char *syscall, int err, const char *target);
/* Throws a TypeError with code ERR_INVALID_ARG. */
static inline void throw_arg(napi_env env, const char *msg) { napi_throw_type_error(env, "ERR_INVALID_ARG", msg); }

/* The unsigned integer option `key` into *out (dflt when absent); 0 after throwing when it is not one. */
int opt_u32(napi_env env, napi_value obj, const char *key, uint32_t dflt, uint32_t *out);
/* The boolean option `key`; dflt when absent or not a boolean. */
int opt_bool(napi_env env, napi_value obj, const char *key, int dflt);
/* The string option `key` into buf: its length, 0 when absent, -1 when not a string, -2 when it
 * does not fit in len - 1 bytes (never truncated). */
int opt_string(napi_env env, napi_value obj, const char *key, char *buf, size_t len);
/* The "netns" option (a path, PATH_MAX at most) into buf[PATH_MAX]; 0 after throwing (code) when
 * it is not a string or too long. */
int opt_netns(napi_env env, napi_value obj, char *buf, const char *code);
/* The Buffer or typed array option `key` as raw bytes, with a strong reference in *ref; 0 after
 * throwing when it is absent or not one. */
int opt_bytes(napi_env env, napi_value obj, const char *key, void **data, size_t *len, napi_ref *ref);

#pragma GCC visibility pop
#endif
