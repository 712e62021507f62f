{
  "targets": [
    {
      "target_name": "llmfab_native",
      "sources": [
        "src/addon.cc",
        "src/matmul.cc",
        "src/attention.cc",
        "src/attention_bf16.cc",
        "src/embedding.cc",
        "src/norm.cc",
        "src/elementwise.cc",
        "src/loss.cc",
        "src/optim.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "-march=native", "-mprefer-vector-width=512", "-fno-math-errno", "-fno-trapping-math", "-fopenmp"],
      "ldflags": ["-fopenmp"],
      "libraries": ["-ldnnl"],
      "conditions": [
        ["OS=='mac'", {
          "xcode_settings": {
            "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
            "OTHER_CPLUSPLUSFLAGS": ["-std=c++17", "-O3", "-Xpreprocessor", "-fopenmp"],
            "OTHER_LDFLAGS": ["-lomp"]
          },
          "include_dirs": ["/opt/homebrew/include", "/usr/local/include"],
          "library_dirs": ["/opt/homebrew/lib", "/usr/local/lib"]
        }]
      ]
    }
  ]
}
