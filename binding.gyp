{
  "targets": [
    {
      "target_name": "tunkit_tun",
      "sources": ["native/tun.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
