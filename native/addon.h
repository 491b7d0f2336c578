#pragma once
#include <node_api.h>

// One exported function: {"name", C function}.
#define EXPORT(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_default, NULL}

// The addon's other parts add their functions to its exports: mac.c (macKey, macSign, macCheck),
// process.c (setMmapThreshold, raiseFdLimit) and splice.c (splice, spliceAbort).
void register_mac(napi_env env, napi_value exports);
void register_process(napi_env env, napi_value exports);
void register_splice(napi_env env, napi_value exports);
