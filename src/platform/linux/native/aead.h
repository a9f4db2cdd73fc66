/*
 * The Aead class: ChaCha20-Poly1305 from the OpenSSL that Node links and exports (see aead.c),
 * and the key object the crypto pool (crypto_pool.c) seals and opens with from its threads.
 */
#ifndef WEFT_AEAD_H
#define WEFT_AEAD_H
#include <node_api.h>
#include <openssl/evp.h>
#include <stdint.h>

#define AEAD_TAG 16
#define AEAD_AD 14
#define AEAD_KEY 32
/* Threads that may use one key at once: the JS thread (0) and pool threads 1..15. */
#define AEAD_MAX_THREADS 16

/*
 * One key. EVP contexts are not thread-safe, so each thread index has its own pair (encrypt,
 * decrypt), made from `key` the first time that thread uses the key; index 0 (the JS thread) is
 * made at construction. Only the JS thread changes `pins`, `destroyed` and `js_gone`; pool
 * threads touch only their own contexts, and only while the JS thread waits in a batch's run().
 * The contexts and the key bytes are wiped when destroy() was called (or the object was
 * collected) and no queued job pins the key any more; the struct is freed when both the JS object
 * is gone and no job pins it.
 */
typedef struct aead {
  EVP_CIPHER_CTX *ctx[AEAD_MAX_THREADS][2];
  uint8_t key[AEAD_KEY];
  int live;      /* contexts and key are set */
  int pins;      /* queued jobs that use this key */
  int destroyed; /* destroy() was called: no new seal, open or job */
  int js_gone;   /* the JS object was finalized */
} aead_t;

#pragma GCC visibility push(hidden)

napi_value aead_ctor(napi_env env, napi_callback_info info);
napi_value aead_seal(napi_env env, napi_callback_info info);
napi_value aead_open(napi_env env, napi_callback_info info);
napi_value aead_destroy(napi_env env, napi_callback_info info);

/* The key behind an Aead object; NULL when `v` is not one. */
aead_t *aead_from(napi_env env, napi_value v);
/* A job takes (pin) or gives back (unpin) the key; unpin may wipe or free it (JS thread only). */
void aead_pin(aead_t *a);
void aead_unpin(aead_t *a);
/*
 * Seal m[0, len) in place with the tag after it (returns len + 16), or open m[0, len) (tag
 * included; returns len - 16), on thread index t's contexts; -1 when it fails (open: forged or
 * damaged). nonce: 12 bytes, ad: 14 bytes. Allocates only the first time thread t uses the key.
 */
int aead_seal_on(aead_t *a, int t, uint8_t *m, uint32_t len, const uint8_t *ad, const uint8_t *nonce);
int aead_open_on(aead_t *a, int t, uint8_t *m, uint32_t len, const uint8_t *ad, const uint8_t *nonce);

#pragma GCC visibility pop
#endif
