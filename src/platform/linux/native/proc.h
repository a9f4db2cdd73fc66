/* Replacing the process image in place (see proc.c). */
#ifndef WEFT_PROC_H
#define WEFT_PROC_H
#include <node_api.h>

#pragma GCC visibility push(hidden)

/* Adds execve to the exports. */
void proc_register(napi_env env, napi_value exports);

#pragma GCC visibility pop
#endif
