{
  "targets": [
    {
      "target_name": "getaway_socket_options",
      "sources": ["native/socket_options.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    },
    {
      "target_name": "getaway_kernel_splice",
      "sources": ["native/kernel_splice.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
