# Test-only addon (never shipped, never copied into the image): the addon's own operation, pool and error code
# with a few exports that fail on purpose. Built by scripts/build.sh faults; loaded by test/addon/faults.test.ts.
{
  "targets": [
    {
      "target_name": "rbd_native_faults",
      "sources": ["faults.cc", "../../../addon/worker_pool.cc", "../../../addon/errors.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "../../../addon"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "libraries": ["-lrbd", "-lrados"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
