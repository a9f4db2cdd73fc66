/* The Aead class: ChaCha20-Poly1305 from the OpenSSL that Node links and exports (see aead.c). */
#ifndef WEFT_AEAD_H
#define WEFT_AEAD_H
#include <node_api.h>

#pragma GCC visibility push(hidden)

napi_value aead_ctor(napi_env env, napi_callback_info info);
napi_value aead_seal(napi_env env, napi_callback_info info);
napi_value aead_open(napi_env env, napi_callback_info info);
napi_value aead_destroy(napi_env env, napi_callback_info info);

#pragma GCC visibility pop
#endif
