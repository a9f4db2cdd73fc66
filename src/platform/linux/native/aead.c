/*
 * AEAD: ChaCha20-Poly1305 from the OpenSSL that Node links and exports.
 *
 * new Aead(key32): the JS thread's encrypt and decrypt contexts with the key schedule set once
 *   (pool threads make their own on first use: aead.h).
 * seal(buf, off, len, adBuf, adOff, ctrBuf, ctrOff) encrypts buf[off, off+len) in place,
 *   writes the 16-byte tag after it and returns len + 16.
 * open(buf, off, len, adBuf, adOff, ctrBuf, ctrOff) authenticates and decrypts in place;
 *   returns the plaintext length, or -1 (forged/damaged; the bytes are then garbage).
 * Nonce = 4 zero bytes + the 8 bytes ctrBuf[ctrOff, ctrOff+8) as they are (the big-endian 64-bit
 * counter, copied byte for byte: it never passes through a JS number); AD = adBuf[adOff, adOff+14).
 * Nothing is allocated per call; nothing throws on a bad message.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <openssl/crypto.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aead.h"
#include "napi_util.h"

/* Frees every thread's contexts and wipes the key (idempotent). */
static void aead_wipe(aead_t *a) {
  for (int t = 0; t < AEAD_MAX_THREADS; t++)
    for (int d = 0; d < 2; d++)
      if (a->ctx[t][d]) {
        EVP_CIPHER_CTX_free(a->ctx[t][d]);
        a->ctx[t][d] = NULL;
      }
  OPENSSL_cleanse(a->key, sizeof a->key);
  a->live = 0;
}

/* Wipes once destroyed (or collected) and unpinned; frees once collected and unpinned. */
static void aead_settle(aead_t *a) {
  if (a->pins > 0) return;
  if (a->destroyed || a->js_gone) aead_wipe(a);
  if (a->js_gone) free(a);
}

void aead_pin(aead_t *a) { a->pins++; }

void aead_unpin(aead_t *a) {
  a->pins--;
  aead_settle(a);
}

static void aead_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  aead_t *a = data;
  a->js_gone = 1;
  aead_settle(a);
}

/* Thread t's context for direction d (0 encrypt, 1 decrypt), made on first use; NULL on failure. */
static EVP_CIPHER_CTX *aead_ctx(aead_t *a, int t, int d) {
  EVP_CIPHER_CTX *c = a->ctx[t][d];
  if (c) return c;
  c = EVP_CIPHER_CTX_new();
  if (!c) return NULL;
  if (EVP_CipherInit_ex(c, EVP_chacha20_poly1305(), NULL, a->key, NULL, d == 0 ? 1 : 0) != 1) {
    EVP_CIPHER_CTX_free(c);
    return NULL;
  }
  a->ctx[t][d] = c;
  return c;
}

napi_value aead_ctor(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], self;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  void *key;
  size_t klen;
  if (argc < 1 || napi_get_buffer_info(env, argv[0], &key, &klen) != napi_ok || klen != AEAD_KEY) {
    throw_arg(env, "new Aead(key) needs a 32-byte Buffer");
    return NULL;
  }
  aead_t *a = calloc(1, sizeof *a);
  if (!a) {
    throw_sys(env, "ERR_AEAD", "calloc", ENOMEM, "aead");
    return NULL;
  }
  memcpy(a->key, key, AEAD_KEY);
  a->live = 1;
  if (!aead_ctx(a, 0, 0) || !aead_ctx(a, 0, 1)) {
    aead_wipe(a);
    free(a);
    throw_sys(env, "ERR_AEAD", "EVP_CipherInit_ex(chacha20-poly1305)", EINVAL, "aead");
    return NULL;
  }
  if (napi_wrap(env, self, a, aead_finalize, NULL, NULL) != napi_ok) {
    aead_wipe(a);
    free(a);
    throw_arg(env, "cannot wrap Aead");
    return NULL;
  }
  return self;
}

aead_t *aead_from(napi_env env, napi_value v) {
  void *data = NULL;
  if (napi_unwrap(env, v, &data) != napi_ok) return NULL;
  return data;
}

int aead_seal_on(aead_t *a, int t, uint8_t *m, uint32_t len, const uint8_t *ad, const uint8_t *nonce) {
  EVP_CIPHER_CTX *c = aead_ctx(a, t, 0);
  int outl;
  if (c && EVP_EncryptInit_ex(c, NULL, NULL, NULL, nonce) == 1 && EVP_EncryptUpdate(c, NULL, &outl, ad, AEAD_AD) == 1 &&
      EVP_EncryptUpdate(c, m, &outl, m, (int)len) == 1 && EVP_EncryptFinal_ex(c, m + len, &outl) == 1 &&
      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, AEAD_TAG, m + len) == 1)
    return (int)len + AEAD_TAG;
  return -1;
}

int aead_open_on(aead_t *a, int t, uint8_t *m, uint32_t len, const uint8_t *ad, const uint8_t *nonce) {
  if (len < AEAD_TAG) return -1;
  EVP_CIPHER_CTX *c = aead_ctx(a, t, 1);
  int outl;
  int n = (int)len - AEAD_TAG;
  if (c && EVP_DecryptInit_ex(c, NULL, NULL, NULL, nonce) == 1 && EVP_DecryptUpdate(c, NULL, &outl, ad, AEAD_AD) == 1 &&
      EVP_DecryptUpdate(c, m, &outl, m, n) == 1 && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, AEAD_TAG, m + n) == 1 &&
      EVP_DecryptFinal_ex(c, m + n, &outl) == 1)
    return n;
  return -1;
}

/* Parses (buf, off, len, adBuf, adOff, ctrBuf, ctrOff); returns 0 and throws on misuse. */
static int aead_args(napi_env env, napi_callback_info info, aead_t **a, uint8_t **buf, size_t *blen, uint32_t *off,
                     uint32_t *len, uint8_t **ad, uint8_t nonce[12]) {
  size_t argc = 7;
  napi_value argv[7], self;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  void *d, *adb, *ctrb;
  size_t adlen, ctrlen;
  uint32_t adoff, ctroff;
  if (argc < 7 || napi_unwrap(env, self, (void **)a) != napi_ok || !(*a)->live || (*a)->destroyed ||
      napi_get_buffer_info(env, argv[0], &d, blen) != napi_ok || napi_get_value_uint32(env, argv[1], off) != napi_ok ||
      napi_get_value_uint32(env, argv[2], len) != napi_ok || napi_get_buffer_info(env, argv[3], &adb, &adlen) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &adoff) != napi_ok || napi_get_buffer_info(env, argv[5], &ctrb, &ctrlen) != napi_ok ||
      napi_get_value_uint32(env, argv[6], &ctroff) != napi_ok) {
    throw_arg(env, "seal/open(buf, off, len, adBuf, adOff, ctrBuf, ctrOff)");
    return 0;
  }
  if ((size_t)adoff + AEAD_AD > adlen) {
    throw_arg(env, "seal/open: AD outside its buffer");
    return 0;
  }
  if ((size_t)ctroff + 8 > ctrlen) {
    throw_arg(env, "seal/open: counter outside its buffer");
    return 0;
  }
  *buf = d;
  *ad = (uint8_t *)adb + adoff;
  memset(nonce, 0, 4);
  memcpy(nonce + 4, (uint8_t *)ctrb + ctroff, 8);
  return 1;
}

napi_value aead_seal(napi_env env, napi_callback_info info) {
  aead_t *a;
  uint8_t *buf, *ad, nonce[12];
  size_t blen;
  uint32_t off, len;
  if (!aead_args(env, info, &a, &buf, &blen, &off, &len, &ad, nonce)) return NULL;
  if ((size_t)off + len + AEAD_TAG > blen) {
    throw_arg(env, "seal: no room for the tag after the message");
    return NULL;
  }
  napi_value v;
  napi_create_int32(env, aead_seal_on(a, 0, buf + off, len, ad, nonce), &v);
  return v;
}

napi_value aead_open(napi_env env, napi_callback_info info) {
  aead_t *a;
  uint8_t *buf, *ad, nonce[12];
  size_t blen;
  uint32_t off, len;
  if (!aead_args(env, info, &a, &buf, &blen, &off, &len, &ad, nonce)) return NULL;
  int r = (size_t)off + len <= blen ? aead_open_on(a, 0, buf + off, len, ad, nonce) : -1;
  napi_value v;
  napi_create_int32(env, r, &v);
  return v;
}

/*
 * destroy(): wipes the contexts (and the key schedule in them) now rather than at GC; when a
 * queued job of a crypto batch still uses the key, right after that job has run.
 */
napi_value aead_destroy(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value self;
  aead_t *a;
  napi_get_cb_info(env, info, &argc, NULL, &self, NULL);
  if (napi_unwrap(env, self, (void **)&a) == napi_ok) {
    a->destroyed = 1;
    aead_settle(a);
  }
  return NULL;
}
