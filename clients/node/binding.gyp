{
  "targets": [
    {
      "target_name": "zerohop_shm",
      "sources": ["src/zerohop_shm.c"],
      "cflags": ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-fno-strict-aliasing"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
