{
  "targets": [
    {
      "target_name": "tunkit_tun",
      "sources": ["native/addon.c", "native/tun.c", "native/mac.c", "native/process.c", "native/splice.c", "native/accept.c", "native/esp.c", "native/datapath.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
