#pragma once
#include <node_api.h>

// The addon's other parts add their functions to its exports: mac.c (macKey, macSign, macCheck)
// and malloc.c (setMmapThreshold).
void register_mac(napi_env env, napi_value exports);
void register_malloc(napi_env env, napi_value exports);
