/* nftables transactions through libnftables, from the thread pool (see nft.c). */
#ifndef WEFT_NFT_H
#define WEFT_NFT_H
#include <node_api.h>

#pragma GCC visibility push(hidden)

/* Adds nftRun to the exports. */
void nft_register(napi_env env, napi_value exports);

#pragma GCC visibility pop
#endif
