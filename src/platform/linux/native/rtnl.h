/* rtnetlink requests from the thread pool (see rtnl.c). */
#ifndef WEFT_RTNL_H
#define WEFT_RTNL_H
#include <node_api.h>

#pragma GCC visibility push(hidden)

/* Adds rtnlTransact, netnsOpen and closeFd to the exports. */
void rtnl_register(napi_env env, napi_value exports);

#pragma GCC visibility pop
#endif
