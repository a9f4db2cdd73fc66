/*
 * AEAD: ChaCha20-Poly1305 from the OpenSSL that Node links and exports.
 *
 * new Aead(key32): one encrypt and one decrypt context with the key schedule set once.
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
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aead.h"
#include "napi_util.h"

#define AEAD_TAG 16
#define AEAD_AD 14

typedef struct {
  EVP_CIPHER_CTX *enc;
  EVP_CIPHER_CTX *dec;
} aead_t;

static void aead_free(aead_t *a) {
  if (a->enc) EVP_CIPHER_CTX_free(a->enc);
  if (a->dec) EVP_CIPHER_CTX_free(a->dec);
  a->enc = a->dec = NULL;
}

static void aead_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  aead_free((aead_t *)data);
  free(data);
}

napi_value aead_ctor(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], self;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  void *key;
  size_t klen;
  if (argc < 1 || napi_get_buffer_info(env, argv[0], &key, &klen) != napi_ok || klen != 32) {
    throw_arg(env, "new Aead(key) needs a 32-byte Buffer");
    return NULL;
  }
  aead_t *a = calloc(1, sizeof *a);
  if (!a) {
    throw_sys(env, "ERR_AEAD", "calloc", ENOMEM, "aead");
    return NULL;
  }
  a->enc = EVP_CIPHER_CTX_new();
  a->dec = EVP_CIPHER_CTX_new();
  if (!a->enc || !a->dec || EVP_EncryptInit_ex(a->enc, EVP_chacha20_poly1305(), NULL, key, NULL) != 1 ||
      EVP_DecryptInit_ex(a->dec, EVP_chacha20_poly1305(), NULL, key, NULL) != 1) {
    aead_free(a);
    free(a);
    throw_sys(env, "ERR_AEAD", "EVP_CipherInit_ex(chacha20-poly1305)", EINVAL, "aead");
    return NULL;
  }
  if (napi_wrap(env, self, a, aead_finalize, NULL, NULL) != napi_ok) {
    aead_free(a);
    free(a);
    throw_arg(env, "cannot wrap Aead");
    return NULL;
  }
  return self;
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
  if (argc < 7 || napi_unwrap(env, self, (void **)a) != napi_ok || !(*a)->enc ||
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
  int outl, r = -1;
  uint8_t *m = buf + off;
  if (EVP_EncryptInit_ex(a->enc, NULL, NULL, NULL, nonce) == 1 && EVP_EncryptUpdate(a->enc, NULL, &outl, ad, AEAD_AD) == 1 &&
      EVP_EncryptUpdate(a->enc, m, &outl, m, (int)len) == 1 && EVP_EncryptFinal_ex(a->enc, m + len, &outl) == 1 &&
      EVP_CIPHER_CTX_ctrl(a->enc, EVP_CTRL_AEAD_GET_TAG, AEAD_TAG, m + len) == 1)
    r = (int)len + AEAD_TAG;
  napi_value v;
  napi_create_int32(env, r, &v);
  return v;
}

napi_value aead_open(napi_env env, napi_callback_info info) {
  aead_t *a;
  uint8_t *buf, *ad, nonce[12];
  size_t blen;
  uint32_t off, len;
  if (!aead_args(env, info, &a, &buf, &blen, &off, &len, &ad, nonce)) return NULL;
  int r = -1;
  if (len >= AEAD_TAG && (size_t)off + len <= blen) {
    int outl;
    uint8_t *c = buf + off;
    int n = (int)len - AEAD_TAG;
    if (EVP_DecryptInit_ex(a->dec, NULL, NULL, NULL, nonce) == 1 && EVP_DecryptUpdate(a->dec, NULL, &outl, ad, AEAD_AD) == 1 &&
        EVP_DecryptUpdate(a->dec, c, &outl, c, n) == 1 &&
        EVP_CIPHER_CTX_ctrl(a->dec, EVP_CTRL_AEAD_SET_TAG, AEAD_TAG, c + n) == 1 &&
        EVP_DecryptFinal_ex(a->dec, c + n, &outl) == 1)
      r = n;
  }
  napi_value v;
  napi_create_int32(env, r, &v);
  return v;
}

/* destroy(): frees the contexts (and the key schedule in them) now rather than at GC. */
napi_value aead_destroy(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value self;
  aead_t *a;
  napi_get_cb_info(env, info, &argc, NULL, &self, NULL);
  if (napi_unwrap(env, self, (void **)&a) == napi_ok) aead_free(a);
  return NULL;
}
