// librados: connections, pools, I/O contexts.
#include <rados/librados.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "args.h"
#include "exports.h"
#include "grow.h"
#include "handles.h"

namespace rbdnative {
namespace {

// Overwrite secret material before its memory is freed.
void Scrub(std::string& s) {
  volatile char* p = s.data();
  for (size_t i = 0; i < s.size(); ++i) p[i] = 0;
  s.clear();
}

// Implements: int rados_create2(rados_t *pcluster, const char *const clustername, const char * const name,
//             uint64_t flags), int rados_conf_read_file(rados_t cluster, const char *path),
//             int rados_conf_set(rados_t cluster, const char *option, const char *value),
//             int rados_connect(rados_t cluster)
// That is rados_create2(&cluster, "ceph", "client.<user>", 0); rados_conf_read_file when confPath is given;
// rados_conf_set for every config entry, then mon_host, keyring and key; rados_connect.
// The key goes to librados only through rados_conf_set("key", ...): never a file, argv or the environment.
class ConnectOperation : public Operation {
 public:
  ConnectOperation(Napi::Env env, std::string user)
      : Operation(env, "rados_connect", "client." + user), user_(std::move(user)) {}
  ~ConnectOperation() override { Scrub(key_); }

  std::string conf_path_, mon_host_, keyring_path_, key_;
  std::vector<std::pair<std::string, std::string>> config_;

  int Execute() override {
    rados_t cluster = nullptr;
    int r = rados_create2(&cluster, "ceph", ("client." + user_).c_str(), 0);
    if (r < 0) return r;
    r = Configure(cluster);
    Scrub(key_);
    if (r >= 0) r = rados_connect(cluster);
    if (r < 0) {
      rados_shutdown(cluster);
      return r;
    }
    native_ = std::make_shared<ClusterNative>();
    native_->cluster = cluster;
    native_->label = "client." + user_;
    return 0;
  }

  Napi::Value Result(Napi::Env env) override { return WrapHandle(env, std::move(native_)); }

 private:
  int Configure(rados_t cluster) {
    int r = 0;
    if (!conf_path_.empty() && (r = rados_conf_read_file(cluster, conf_path_.c_str())) < 0) return r;
    for (const auto& [name, value] : config_) {
      if ((r = rados_conf_set(cluster, name.c_str(), value.c_str())) < 0) return r;
    }
    if (!mon_host_.empty() && (r = rados_conf_set(cluster, "mon_host", mon_host_.c_str())) < 0) return r;
    if (!keyring_path_.empty() && (r = rados_conf_set(cluster, "keyring", keyring_path_.c_str())) < 0) return r;
    if (!key_.empty() && (r = rados_conf_set(cluster, "key", key_.c_str())) < 0) return r;
    return 0;
  }

  std::string user_;
  std::shared_ptr<ClusterNative> native_;
};

Napi::Value Connect(const Napi::CallbackInfo& info) {
  const char* op = "rados_connect";
  Napi::Env env = info.Env();
  Napi::Object options = ObjectArg(info, 0, "options", op);
  auto optionalString = [&](const char* name) -> std::string {
    Napi::Value v = options.Get(name);
    if (v.IsUndefined() || v.IsNull()) return "";
    if (!v.IsString()) throw ArgError(env, op, std::string("options.") + name + " must be a string");
    return v.As<Napi::String>().Utf8Value();
  };
  std::string user = optionalString("user");
  if (user.empty()) throw ArgError(env, op, "options.user must be a non-empty string");
  auto operation = std::make_unique<ConnectOperation>(env, user);
  operation->conf_path_ = optionalString("confPath");
  operation->mon_host_ = optionalString("monHost");
  operation->keyring_path_ = optionalString("keyringPath");
  operation->key_ = optionalString("key");
  Napi::Value config = options.Get("config");
  if (config.IsObject()) {
    Napi::Object entries = config.As<Napi::Object>();
    Napi::Array names = entries.GetPropertyNames();
    for (uint32_t i = 0; i < names.Length(); ++i) {
      std::string name = names.Get(i).ToString().Utf8Value();
      Napi::Value value = entries.Get(name);
      if (!value.IsString()) throw ArgError(env, op, "options.config." + name + " must be a string");
      operation->config_.emplace_back(name, value.As<Napi::String>().Utf8Value());
    }
  } else if (!config.IsUndefined()) {
    throw ArgError(env, op, "options.config must be an object of strings");
  }
  return Start(std::move(operation));
}

// Implements: void rados_shutdown(rados_t cluster)
// Deferred until no ioctx or image of the connection is open.
Napi::Value Shutdown(const Napi::CallbackInfo& info) { return CloseHandle<ClusterNative>(info, "rados_shutdown"); }

// Implements: int rados_cluster_fsid(rados_t cluster, char *buf, size_t len)
class FsidOperation : public ClusterOperation {
 public:
  using ClusterOperation::ClusterOperation;
  int Execute() override {
    char buf[64] = {0};
    int r = rados_cluster_fsid(cluster_, buf, sizeof buf - 1);
    if (r < 0) return r;
    fsid_ = buf;
    return 0;
  }
  Napi::Value Result(Napi::Env env) override { return Napi::String::New(env, fsid_); }

 private:
  std::string fsid_;
};

Napi::Value ClusterFsid(const Napi::CallbackInfo& info) {
  const char* op = "rados_cluster_fsid";
  return Start(std::make_unique<FsidOperation>(info.Env(), op, HandleArg<ClusterNative>(info, 0, op), ""));
}

// Implements: int rados_cluster_stat(rados_t cluster, struct rados_cluster_stat_t *result)
class ClusterStatOperation : public ClusterOperation {
 public:
  using ClusterOperation::ClusterOperation;
  int Execute() override { return rados_cluster_stat(cluster_, &stat_); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("kb", static_cast<double>(stat_.kb));
    o.Set("kbUsed", static_cast<double>(stat_.kb_used));
    o.Set("kbAvail", static_cast<double>(stat_.kb_avail));
    o.Set("numObjects", static_cast<double>(stat_.num_objects));
    return o;
  }

 private:
  rados_cluster_stat_t stat_{};
};

Napi::Value ClusterStat(const Napi::CallbackInfo& info) {
  const char* op = "rados_cluster_stat";
  return Start(std::make_unique<ClusterStatOperation>(info.Env(), op, HandleArg<ClusterNative>(info, 0, op), ""));
}

// Implements: int rados_pool_list(rados_t cluster, char *buf, size_t len)
class PoolListOperation : public ClusterOperation {
 public:
  using ClusterOperation::ClusterOperation;
  int Execute() override {
    std::vector<char> buf;
    int r = GrowToFit(*this, "bytes", 4096, [&](size_t& size) {
      buf.resize(size);
      // Not ERANGE here: a list that does not fit returns the length it needs.
      int r = rados_pool_list(cluster_, buf.data(), size);
      if (r < 0 || static_cast<size_t>(r) <= size) return r;
      size = static_cast<size_t>(r);
      return -ERANGE;
    });
    if (r < 0) return r;
    for (const char* p = buf.data(); *p != '\0'; p += std::strlen(p) + 1) names_.emplace_back(p);
    return 0;
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array a = Napi::Array::New(env, names_.size());
    for (size_t i = 0; i < names_.size(); ++i) a.Set(i, names_[i]);
    return a;
  }

 private:
  std::vector<std::string> names_;
};

Napi::Value PoolList(const Napi::CallbackInfo& info) {
  const char* op = "rados_pool_list";
  return Start(std::make_unique<PoolListOperation>(info.Env(), op, HandleArg<ClusterNative>(info, 0, op), ""));
}

// Implements: int64_t rados_pool_lookup(rados_t cluster, const char *pool_name)
class PoolLookupOperation : public ClusterOperation {
 public:
  PoolLookupOperation(Napi::Env env, const char* op, std::shared_ptr<ClusterNative> c, std::string pool)
      : ClusterOperation(env, op, std::move(c), pool), pool_(std::move(pool)) {}
  int Execute() override {
    int64_t r = rados_pool_lookup(cluster_, pool_.c_str());
    if (r < 0) return static_cast<int>(r);
    id_ = r;
    return 0;
  }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, static_cast<double>(id_)); }

 private:
  std::string pool_;
  int64_t id_ = -1;
};

Napi::Value PoolLookup(const Napi::CallbackInfo& info) {
  const char* op = "rados_pool_lookup";
  auto cluster = HandleArg<ClusterNative>(info, 0, op);
  return Start(std::make_unique<PoolLookupOperation>(info.Env(), op, cluster, StringArg(info, 1, "pool", op)));
}

// The calls that take a pool name and return only a status.
class PoolChangeOperation : public ClusterOperation {
 public:
  PoolChangeOperation(Napi::Env env, const char* op, std::shared_ptr<ClusterNative> c, std::string pool,
                      int (*call)(rados_t, const char*))
      : ClusterOperation(env, op, std::move(c), pool), pool_(std::move(pool)), call_(call) {}
  int Execute() override { return call_(cluster_, pool_.c_str()); }

 private:
  std::string pool_;
  int (*call_)(rados_t, const char*);
};

// Implements: int rados_pool_create(rados_t cluster, const char *pool_name)
Napi::Value PoolCreate(const Napi::CallbackInfo& info) {
  const char* op = "rados_pool_create";
  auto cluster = HandleArg<ClusterNative>(info, 0, op);
  return Start(std::make_unique<PoolChangeOperation>(info.Env(), op, cluster, StringArg(info, 1, "pool", op),
                                                     rados_pool_create));
}

// Implements: int rados_pool_delete(rados_t cluster, const char *pool_name)
Napi::Value PoolDelete(const Napi::CallbackInfo& info) {
  const char* op = "rados_pool_delete";
  auto cluster = HandleArg<ClusterNative>(info, 0, op);
  return Start(std::make_unique<PoolChangeOperation>(info.Env(), op, cluster, StringArg(info, 1, "pool", op),
                                                     rados_pool_delete));
}

// Implements: int rados_mon_command(rados_t cluster, const char **cmd, size_t cmdlen, const char *inbuf,
//             size_t inbuflen, char **outbuf, size_t *outbuflen, char **outs, size_t *outslen)
// and rados_mgr_command, which has the same signature and goes to the active manager instead.
class CommandOperation : public ClusterOperation {
 public:
  using Send = int (*)(rados_t, const char**, size_t, const char*, size_t, char**, size_t*, char**, size_t*);
  CommandOperation(Napi::Env env, const char* op, std::shared_ptr<ClusterNative> c, std::string command, Send send)
      : ClusterOperation(env, op, std::move(c), ""), command_(std::move(command)), send_(send) {}
  int Execute() override {
    const char* cmd[] = {command_.c_str()};
    char* outbuf = nullptr;
    char* outs = nullptr;
    size_t outbuf_len = 0, outs_len = 0;
    int r = send_(cluster_, cmd, 1, "", 0, &outbuf, &outbuf_len, &outs, &outs_len);
    if (outbuf != nullptr) out_.assign(outbuf, outbuf_len);
    rados_buffer_free(outbuf);
    rados_buffer_free(outs);
    return r;
  }
  // Only the JSON output: the daemons' status text is free-form library output, kept out of our errors.
  Napi::Value Result(Napi::Env env) override { return Napi::String::New(env, out_); }

 private:
  std::string command_, out_;
  Send send_;
};

Napi::Value MonCommand(const Napi::CallbackInfo& info) {
  const char* op = "rados_mon_command";
  auto cluster = HandleArg<ClusterNative>(info, 0, op);
  return Start(std::make_unique<CommandOperation>(info.Env(), op, cluster, StringArg(info, 1, "command", op), rados_mon_command));
}

// Implements: int rados_mgr_command(rados_t cluster, const char **cmd, size_t cmdlen, const char *inbuf,
//             size_t inbuflen, char **outbuf, size_t *outbuflen, char **outs, size_t *outslen)
Napi::Value MgrCommand(const Napi::CallbackInfo& info) {
  const char* op = "rados_mgr_command";
  auto cluster = HandleArg<ClusterNative>(info, 0, op);
  return Start(std::make_unique<CommandOperation>(info.Env(), op, cluster, StringArg(info, 1, "command", op), rados_mgr_command));
}

// Implements: int rados_getaddrs(rados_t cluster, char **addrs)
// The addrvec as librados prints it ("[v2:10.0.0.1:0/123,v1:10.0.0.1:0/123]" or one "v2:...:0/123"); picking the
// entry to blocklist is policy, left to TypeScript.
class GetAddrsOperation : public ClusterOperation {
 public:
  using ClusterOperation::ClusterOperation;
  int Execute() override {
    char* addrs = nullptr;
    int r = rados_getaddrs(cluster_, &addrs);
    if (r >= 0 && addrs != nullptr) addrs_ = addrs;
    rados_buffer_free(addrs);
    return r < 0 ? r : 0;
  }
  Napi::Value Result(Napi::Env env) override { return Napi::String::New(env, addrs_); }

 private:
  std::string addrs_;
};

Napi::Value GetAddrs(const Napi::CallbackInfo& info) {
  const char* op = "rados_getaddrs";
  return Start(std::make_unique<GetAddrsOperation>(info.Env(), op, HandleArg<ClusterNative>(info, 0, op), ""));
}

// Implements: int rados_blocklist_add(rados_t cluster, char *client_address, uint32_t expire_seconds)
// Returns once the OSD map that carries the entry is known to this client (librados waits for it).
class BlocklistAddOperation : public ClusterOperation {
 public:
  BlocklistAddOperation(Napi::Env env, const char* op, std::shared_ptr<ClusterNative> c, std::string address,
                        uint64_t expire)
      : ClusterOperation(env, op, std::move(c), address), address_(std::move(address)), expire_(static_cast<uint32_t>(expire)) {}
  int Execute() override { return rados_blocklist_add(cluster_, address_.data(), expire_); }

 private:
  std::string address_;
  uint32_t expire_;
};

Napi::Value BlocklistAdd(const Napi::CallbackInfo& info) {
  const char* op = "rados_blocklist_add";
  auto cluster = HandleArg<ClusterNative>(info, 0, op);
  std::string address = StringArg(info, 1, "clientAddress", op);
  uint64_t expire = Uint64Arg(info, 2, "expireSeconds", op);
  if (expire > UINT32_MAX) throw ArgError(info.Env(), op, "expireSeconds must fit in 32 bits");
  return Start(std::make_unique<BlocklistAddOperation>(info.Env(), op, cluster, address, expire));
}

// Implements: int rados_ioctx_create(rados_t cluster, const char *pool_name, rados_ioctx_t *ioctx),
//             void rados_ioctx_set_namespace(rados_ioctx_t io, const char *nspace)
class IoCtxCreateOperation : public ClusterOperation {
 public:
  IoCtxCreateOperation(Napi::Env env, const char* op, std::shared_ptr<ClusterNative> c, std::string pool,
                       std::string ns)
      : ClusterOperation(env, op, c, ns.empty() ? pool : pool + "/" + ns),
        owner_(std::move(c)),
        pool_(std::move(pool)),
        ns_(std::move(ns)) {}
  int Execute() override {
    rados_ioctx_t io = nullptr;
    int r = rados_ioctx_create(cluster_, pool_.c_str(), &io);
    if (r < 0) {
      // Drop our reference here, on the pool thread: it may be the last one, and rados_shutdown blocks.
      owner_.reset();
      return r;
    }
    rados_ioctx_set_namespace(io, ns_.c_str());
    native_ = std::make_shared<IoCtxNative>();
    native_->cluster = std::move(owner_);
    native_->ioctx = io;
    native_->label = ns_.empty() ? pool_ : pool_ + "/" + ns_;
    return 0;
  }
  Napi::Value Result(Napi::Env env) override { return WrapHandle(env, std::move(native_)); }

 private:
  std::shared_ptr<ClusterNative> owner_;
  std::string pool_, ns_;
  std::shared_ptr<IoCtxNative> native_;
};

Napi::Value IoCtxCreate(const Napi::CallbackInfo& info) {
  const char* op = "rados_ioctx_create";
  auto cluster = HandleArg<ClusterNative>(info, 0, op);
  std::string pool = StringArg(info, 1, "pool", op);
  std::string ns = info[2].IsUndefined() ? "" : StringArg(info, 2, "namespace", op);
  return Start(std::make_unique<IoCtxCreateOperation>(info.Env(), op, cluster, pool, ns));
}

// Implements: void rados_ioctx_destroy(rados_ioctx_t io)
// Deferred until no image of the pool is open.
Napi::Value IoCtxDestroy(const Napi::CallbackInfo& info) {
  return CloseHandle<IoCtxNative>(info, "rados_ioctx_destroy");
}

// Implements: int rados_ioctx_pool_stat(rados_ioctx_t io, struct rados_pool_stat_t *stats)
class PoolStatOperation : public IoCtxOperation {
 public:
  using IoCtxOperation::IoCtxOperation;
  int Execute() override { return rados_ioctx_pool_stat(io_, &stat_); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("numBytes", static_cast<double>(stat_.num_bytes));
    o.Set("numObjects", static_cast<double>(stat_.num_objects));
    return o;
  }

 private:
  rados_pool_stat_t stat_{};
};

Napi::Value IoCtxPoolStat(const Napi::CallbackInfo& info) {
  const char* op = "rados_ioctx_pool_stat";
  return Start(std::make_unique<PoolStatOperation>(info.Env(), op, HandleArg<IoCtxNative>(info, 0, op), ""));
}

// What both object class calls take after the I/O context: (object, cls, method, input). The context itself goes
// to the operation's keep-alive, released on the pool thread.
struct ClassCall {
  std::string oid, cls, method;
  std::vector<char> input;
};

ClassCall ClassCallArgs(const Napi::CallbackInfo& info, const char* op) {
  return ClassCall{StringArg(info, 1, "object", op), StringArg(info, 2, "cls", op), StringArg(info, 3, "method", op),
                   BufferArg(info, 4, "input", op)};
}

// Implements: int rados_exec(rados_ioctx_t io, const char *oid, const char *cls, const char *method,
//             const char *in_buf, size_t in_len, char *buf, size_t out_len)
// One object class method call; the output buffer is sized by the caller (-ERANGE when the method returns more).
class ExecOperation : public IoCtxOperation {
 public:
  ExecOperation(Napi::Env env, const char* op, std::shared_ptr<IoCtxNative> io, ClassCall call, size_t max_output)
      : IoCtxOperation(env, op, std::move(io), call.oid), call_(std::move(call)), output_(max_output) {}
  int Execute() override {
    int r = rados_exec(io_, call_.oid.c_str(), call_.cls.c_str(), call_.method.c_str(), call_.input.data(),
                       call_.input.size(), output_.data(), output_.size());
    if (r < 0) return r;
    output_.resize(static_cast<size_t>(r));
    return 0;
  }
  Napi::Value Result(Napi::Env env) override { return Napi::Buffer<char>::Copy(env, output_.data(), output_.size()); }

 private:
  ClassCall call_;
  std::vector<char> output_;
};

Napi::Value Exec(const Napi::CallbackInfo& info) {
  const char* op = "rados_exec";
  auto io = HandleArg<IoCtxNative>(info, 0, op);
  ClassCall call = ClassCallArgs(info, op);
  uint64_t max_output = Uint64Arg(info, 5, "maxOutput", op);
  if (max_output > (1u << 20)) throw ArgError(info.Env(), op, "maxOutput must be at most 1 MiB");
  return Start(std::make_unique<ExecOperation>(info.Env(), op, io, std::move(call), static_cast<size_t>(max_output)));
}

// Implements: rados_write_op_t rados_create_write_op(void), void rados_write_op_assert_exists(rados_write_op_t op),
//             void rados_write_op_exec(rados_write_op_t op, const char *cls, const char *method, const char *in_buf,
//             size_t in_len, int *prval), int rados_write_op_operate2(rados_write_op_t op, rados_ioctx_t io,
//             const char *oid, time_t *mtime, int flags), void rados_release_write_op(rados_write_op_t op)
// An object class method that writes, as one operation that fails with ENOENT instead of creating a missing object
// (rados_exec would create it: an object class write to a missing object makes one).
class ExecOnExistingOperation : public IoCtxOperation {
 public:
  ExecOnExistingOperation(Napi::Env env, const char* op, std::shared_ptr<IoCtxNative> io, ClassCall call)
      : IoCtxOperation(env, op, std::move(io), call.oid), call_(std::move(call)) {}
  int Execute() override {
    rados_write_op_t write = rados_create_write_op();
    if (write == nullptr) return -ENOMEM;
    int method_result = 0;
    rados_write_op_assert_exists(write);
    rados_write_op_exec(write, call_.cls.c_str(), call_.method.c_str(), call_.input.data(), call_.input.size(),
                        &method_result);
    int r = rados_write_op_operate2(write, io_, call_.oid.c_str(), nullptr, 0);
    rados_release_write_op(write);
    return r < 0 ? r : method_result;
  }

 private:
  ClassCall call_;
};

Napi::Value ExecOnExisting(const Napi::CallbackInfo& info) {
  const char* op = "rados_write_op_exec";
  auto io = HandleArg<IoCtxNative>(info, 0, op);
  return Start(std::make_unique<ExecOnExistingOperation>(info.Env(), op, io, ClassCallArgs(info, op)));
}

}  // namespace

void InitRados(Napi::Env env, Napi::Object exports) {
  Export<Connect>(env, exports, "radosConnect");
  Export<Shutdown>(env, exports, "radosShutdown");
  Export<ClusterFsid>(env, exports, "radosClusterFsid");
  Export<ClusterStat>(env, exports, "radosClusterStat");
  Export<PoolList>(env, exports, "radosPoolList");
  Export<PoolLookup>(env, exports, "radosPoolLookup");
  Export<PoolCreate>(env, exports, "radosPoolCreate");
  Export<PoolDelete>(env, exports, "radosPoolDelete");
  Export<MonCommand>(env, exports, "radosMonCommand");
  Export<MgrCommand>(env, exports, "radosMgrCommand");
  Export<GetAddrs>(env, exports, "radosGetAddrs");
  Export<BlocklistAdd>(env, exports, "radosBlocklistAdd");
  Export<IoCtxCreate>(env, exports, "radosIoctxCreate");
  Export<IoCtxDestroy>(env, exports, "radosIoctxDestroy");
  Export<IoCtxPoolStat>(env, exports, "radosIoctxPoolStat");
  Export<Exec>(env, exports, "radosExec");
  Export<ExecOnExisting>(env, exports, "radosWriteOpExec");
}

}  // namespace rbdnative
