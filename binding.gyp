{
  "targets": [
    {
      "target_name": "weft_native",
      "sources": [
        "src/platform/linux/native/napi_util.c",
        "src/platform/linux/native/netns.c",
        "src/platform/linux/native/handles.c",
        "src/platform/linux/native/tap.c",
        "src/platform/linux/native/uring.c",
        "src/platform/linux/native/udp.c",
        "src/platform/linux/native/aead.c",
        "src/platform/linux/native/crypto_pool.c",
        "src/platform/linux/native/rtnl.c",
        "src/platform/linux/native/nft.c",
        "src/platform/linux/native/file.c",
        "src/platform/linux/native/proc.c",
        "src/platform/linux/native/loop.c",
        "src/platform/linux/native/module.c"
      ],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers", "-std=gnu11"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-ldl", "-lpthread"]
    }
  ]
}
