{
  "targets": [
    {
      "target_name": "rbd_native",
      "sources": [
        "addon/module.cc",
        "addon/worker_pool.cc",
        "addon/errors.cc",
        "addon/rados.cc",
        "addon/rbd_pool.cc",
        "addon/rbd_image.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "libraries": ["-lrbd", "-lrados"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
