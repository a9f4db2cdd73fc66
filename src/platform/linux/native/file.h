/* A file replaced atomically and durably in one thread-pool job (see file.c). */
#ifndef WEFT_FILE_H
#define WEFT_FILE_H
#include <node_api.h>

#pragma GCC visibility push(hidden)

/* Adds atomicWrite to the exports. */
void file_register(napi_env env, napi_value exports);

#pragma GCC visibility pop
#endif
