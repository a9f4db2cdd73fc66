/* Helpers shared by the addon's C files (defined in weft_native.c). */
#ifndef WEFT_NATIVE_H
#define WEFT_NATIVE_H
#include <node_api.h>

const char *errno_name(int e);
/* Throws an Error with code, syscall, errno, errnoName, target and detail. */
void throw_sys(napi_env env, const char *code, const char *syscall, int err, const char *target);
/* Enters the network namespace at `path` for this thread ("" = stay); 0 or an errno. */
int enter_netns(const char *path, int *saved);
/* Returns to the namespace saved by enter_netns (aborts if it cannot). */
void leave_netns(int saved);
/* Adds the rtnetlink functions (rtnl.c) to the exports. */
void rtnl_register(napi_env env, napi_value exports);

#endif
