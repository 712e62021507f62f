// MPI collectives for data-parallel training, as a separate addon built only where MPI is
// installed (the main addon never needs it). Gradients are summed in place across ranks
// with MPI_Allreduce; scalars (loss sums, token counts) travel as float64.
#include <dlfcn.h>
#include <mpi.h>
#include <napi.h>

#include <string>

namespace {

bool started = false;

void check(const Napi::Env& env, int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw Napi::Error::New(env, std::string(what) + ": " + std::string(text, length));
}

// Starts MPI once; returns {rank, size}. Open MPI loads its components as plugins that
// need libmpi's symbols globally visible, which Node's dlopen of this addon does not give:
// libmpi is opened again with RTLD_GLOBAL first.
Napi::Value Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!started) {
    for (const char* name : {"libmpi.so.40", "libmpi.so.12", "libmpi.so"})
      if (dlopen(name, RTLD_NOW | RTLD_GLOBAL)) break;
    int provided = 0;
    check(env, MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    started = true;
  }
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  Napi::Object out = Napi::Object::New(env);
  out.Set("rank", rank);
  out.Set("size", size);
  return out;
}

// Sums a Float32Array (or the first n elements) across ranks, in place.
Napi::Value AllreduceF32(const Napi::CallbackInfo& info) {
  auto data = info[0].As<Napi::Float32Array>();
  size_t n = info.Length() > 1 ? info[1].As<Napi::Number>().Int64Value() : data.ElementLength();
  check(info.Env(), MPI_Allreduce(MPI_IN_PLACE, data.Data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
        "MPI_Allreduce");
  return info.Env().Undefined();
}

// Sums a Float64Array across ranks, in place.
Napi::Value AllreduceF64(const Napi::CallbackInfo& info) {
  auto data = info[0].As<Napi::Float64Array>();
  check(info.Env(),
        MPI_Allreduce(MPI_IN_PLACE, data.Data(), static_cast<int>(data.ElementLength()), MPI_DOUBLE, MPI_SUM,
                      MPI_COMM_WORLD),
        "MPI_Allreduce");
  return info.Env().Undefined();
}

// Copies rank `root`'s Float32Array into every rank's.
Napi::Value BroadcastF32(const Napi::CallbackInfo& info) {
  auto data = info[0].As<Napi::Float32Array>();
  int root = info[1].As<Napi::Number>().Int32Value();
  check(info.Env(), MPI_Bcast(data.Data(), static_cast<int>(data.ElementLength()), MPI_FLOAT, root, MPI_COMM_WORLD),
        "MPI_Bcast");
  return info.Env().Undefined();
}

Napi::Value Barrier(const Napi::CallbackInfo& info) {
  check(info.Env(), MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
  return info.Env().Undefined();
}

Napi::Value Finish(const Napi::CallbackInfo& info) {
  if (started) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
  return info.Env().Undefined();
}

// Ends every rank of the job (a rank that fails must not leave the others waiting).
Napi::Value Abort(const Napi::CallbackInfo& info) {
  MPI_Abort(MPI_COMM_WORLD, info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("start", Napi::Function::New(env, Start, "start"));
  exports.Set("allreduceF32", Napi::Function::New(env, AllreduceF32, "allreduceF32"));
  exports.Set("allreduceF64", Napi::Function::New(env, AllreduceF64, "allreduceF64"));
  exports.Set("broadcastF32", Napi::Function::New(env, BroadcastF32, "broadcastF32"));
  exports.Set("barrier", Napi::Function::New(env, Barrier, "barrier"));
  exports.Set("finish", Napi::Function::New(env, Finish, "finish"));
  exports.Set("abort", Napi::Function::New(env, Abort, "abort"));
  return exports;
}

}  // namespace

NODE_API_MODULE(llmfab_mpi, Init)
