{
  "targets": [
    {
      "target_name": "xen_zcopy",
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/fd.cc",
        "native/drm.cc",
        "native/gntalloc.cc",
        "native/gntdev.cc",
        "native/pool.cc",
        "native/zcopy.cc",
        "native/dmabuf.cc",
        "native/evtchn.cc",
        "native/ring.cc",
        "native/kms.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "kernel-module"
      ],
      "defines": [
        "NAPI_VERSION=9",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NODE_ADDON_API_CPP_EXCEPTIONS",
        "NODE_ADDON_API_CPP_EXCEPTIONS_ALL"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"]
    }
  ]
}
