{
  "targets": [
    {
      "target_name": "getaway_socket_options",
      "sources": ["native/socket_options.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
