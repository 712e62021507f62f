{
  "targets": [
    {
      "target_name": "llmfab_mpi",
      "sources": ["src/mpi.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "<!@(mpicxx --showme:incdirs)"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "OMPI_SKIP_MPICXX=1", "MPICH_SKIP_MPICXX=1"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O2"],
      "libraries": ["<!@(mpicxx --showme:link)", "-ldl"]
    }
  ]
}
