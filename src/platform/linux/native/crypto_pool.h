/*
 * The crypto pool: seals and opens a batch of AEAD jobs on the JS thread and a few pthreads,
 * fork-join (see crypto_pool.c). Registers the classes CryptoPool and CryptoBatch.
 */
#ifndef WEFT_CRYPTO_POOL_H
#define WEFT_CRYPTO_POOL_H
#include <node_api.h>

#pragma GCC visibility push(hidden)

void crypto_pool_register(napi_env env, napi_value exports);

#pragma GCC visibility pop
#endif
