{
  "targets": [
    {
      "target_name": "tunkit_tun",
      "sources": ["native/tun.c", "native/mac.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
