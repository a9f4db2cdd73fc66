/*
 * weft native data-path I/O: TAP devices and UDP sockets for the router, driven from libuv; the
 * ChaCha20-Poly1305 AEAD; rtnetlink for the CNI plugin; nftables transactions in-process. This file
 * registers the exports.
 *
 * The files, bottom to top (each includes only headers of the layers under it, so the include
 * graph has no cycle):
 *
 *   napi_util  errors with codes, option parsing            netns  entering a network namespace
 *   handles    the handle struct and table, lifecycle, delivery of a batch to JS
 *   tap, udp   the two handle kinds: constructors, writes/sends, batch reads (inline in tap.h, udp.h)
 *   aead       the Aead class                               rtnl   rtnetlink on the thread pool
 *   crypto_pool  batches of Aead jobs on a few pthreads      nft    libnftables (dlopen) on the thread pool
 *                                                            file   a file replaced atomically, one pool job
 *                                                            proc   execve: the process image replaced in place; mallocTrim
 *   loop       the read side: uv_poll, one batch per wakeup, spinning; start/stop/pollNow/setSpin
 *   module     this file: the classes Tap, Udp, Aead (CryptoPool, CryptoBatch) and the exports
 *
 * Syscall failures in constructors throw Errors carrying code, syscall, errno, errnoName and
 * target.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <openssl/crypto.h>

#include "aead.h"
#include "crypto_pool.h"
#include "file.h"
#include "handles.h"
#include "loop.h"
#include "nft.h"
#include "proc.h"
#include "rtnl.h"
#include "tap.h"
#include "udp.h"

static napi_value define(napi_env env, const char *name, napi_callback ctor, napi_property_descriptor *props,
                         size_t n) {
  napi_value cls;
  napi_define_class(env, name, NAPI_AUTO_LENGTH, ctor, NULL, n, props, &cls);
  return cls;
}

#define METHOD(n, f) {n, NULL, f, NULL, NULL, NULL, napi_default_method, NULL}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  handles_init(env);

  napi_property_descriptor tap_props[] = {
      METHOD("start", m_start), METHOD("stop", m_stop),     METHOD("close", m_close),
      METHOD("fd", m_fd),       METHOD("write", tap_write), METHOD("uring", tap_uring), METHOD("pollNow", m_poll_now),
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
  napi_create_uint32(env, TAP_OFFLOADS_TSO, &c);
  napi_set_named_property(env, exports, "TUN_OFFLOADS_TSO", c);
  napi_create_uint32(env, TAP_OFFLOADS_USO, &c);
  napi_set_named_property(env, exports, "TUN_OFFLOADS_USO", c);
  napi_create_uint32(env, ST_COUNT, &c);
  napi_set_named_property(env, exports, "STATS_SIZE", c);
  crypto_pool_register(env, exports);
  rtnl_register(env, exports);
  nft_register(env, exports);
  file_register(env, exports);
  proc_register(env, exports);
  return exports;
}
