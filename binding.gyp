{
  "targets": [
    {
      "target_name": "tunkit_tun",
      "sources": ["native/tun.c", "native/mac.c", "native/malloc.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
