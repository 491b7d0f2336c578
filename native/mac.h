#pragma once
#include <node_api.h>

// Adds macKey, macSign and macCheck (native/mac.c) to the addon's exports.
void register_mac(napi_env env, napi_value exports);
