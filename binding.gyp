{
  "targets": [
    {
      "target_name": "weft_native",
      "sources": ["src/platform/linux/native/udp.c", "src/platform/linux/native/rtnl.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers", "-std=gnu11"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
