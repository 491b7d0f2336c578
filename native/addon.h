#pragma once
#include <node_api.h>

// The addon's other parts add their functions to its exports: mac.c (macKey, macSign, macCheck),
// process.c (setMmapThreshold, raiseFdLimit) and splice.c (splice, spliceAbort).
void register_mac(napi_env env, napi_value exports);
void register_process(napi_env env, napi_value exports);
void register_splice(napi_env env, napi_value exports);
