/*
 * The read side of both handle kinds, driven from libuv: start(onBatch), stop(), pollNow() and
 * setSpin(). Sits above tap.h and udp.h (it runs their batch reads) and below the module.
 */
#ifndef WEFT_LOOP_H
#define WEFT_LOOP_H
#include <node_api.h>

#pragma GCC visibility push(hidden)

/* start(onBatch), stop(), pollNow(): methods of both classes. */
napi_value m_start(napi_env env, napi_callback_info info);
napi_value m_stop(napi_env env, napi_callback_info info);
napi_value m_poll_now(napi_env env, napi_callback_info info);
/* setSpin(microseconds 0..1000): the module function. */
napi_value set_spin(napi_env env, napi_callback_info info);

#pragma GCC visibility pop
#endif
