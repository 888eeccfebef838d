{
  "targets": [
    {
      "target_name": "forkmatrix_raw",
      "sources": ["raw_fork.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags_c": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
