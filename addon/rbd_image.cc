// librbd calls on an open image: close, stat, features, id, parent, resize, flatten, data I/O, metadata, watchers,
// snapshots.
// Opening one is a call on its pool (rbd_pool.cc).
#include <rbd/librbd.h>

#include <cstring>
#include <utility>
#include <vector>

#include "args.h"
#include "exports.h"
#include "grow.h"
#include "handles.h"

namespace rbdnative {
namespace {

// Implements: int rbd_close(rbd_image_t image)
Napi::Value Close(const Napi::CallbackInfo& info) { return CloseHandle<ImageNative>(info, "rbd_close"); }

// Implements: int rbd_stat(rbd_image_t image, rbd_image_info_t *info, size_t infosize)
class StatOperation : public ImageOperation {
 public:
  using ImageOperation::ImageOperation;
  int Execute() override { return rbd_stat(image_, &info_, sizeof info_); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("size", static_cast<double>(info_.size));
    o.Set("objSize", static_cast<double>(info_.obj_size));
    o.Set("numObjs", static_cast<double>(info_.num_objs));
    o.Set("order", info_.order);
    o.Set("blockNamePrefix", std::string(info_.block_name_prefix, strnlen(info_.block_name_prefix,
                                                                         sizeof info_.block_name_prefix)));
    return o;
  }

 private:
  rbd_image_info_t info_{};
};

Napi::Value Stat(const Napi::CallbackInfo& info) {
  const char* op = "rbd_stat";
  return Start(std::make_unique<StatOperation>(info.Env(), op, HandleArg<ImageNative>(info, 0, op)));
}

// Implements: int rbd_get_features(rbd_image_t image, uint64_t *features)
class GetFeaturesOperation : public ImageOperation {
 public:
  using ImageOperation::ImageOperation;
  int Execute() override { return rbd_get_features(image_, &features_); }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, static_cast<double>(features_)); }

 private:
  uint64_t features_ = 0;
};

Napi::Value GetFeatures(const Napi::CallbackInfo& info) {
  const char* op = "rbd_get_features";
  return Start(std::make_unique<GetFeaturesOperation>(info.Env(), op, HandleArg<ImageNative>(info, 0, op)));
}

// Implements: int rbd_get_id(rbd_image_t image, char *id, size_t id_len)
class GetIdOperation : public ImageOperation {
 public:
  using ImageOperation::ImageOperation;
  int Execute() override {
    std::vector<char> buf;
    // rbd_get_id does not say how long the id is: GrowToFit doubles.
    int r = GrowToFit(*this, "bytes", 32, [&](size_t& size) {
      buf.resize(size);
      return rbd_get_id(image_, buf.data(), size);
    });
    if (r < 0) return r;
    id_.assign(buf.data(), strnlen(buf.data(), buf.size()));
    return 0;
  }
  Napi::Value Result(Napi::Env env) override { return Napi::String::New(env, id_); }

 private:
  std::string id_;
};

Napi::Value GetId(const Napi::CallbackInfo& info) {
  const char* op = "rbd_get_id";
  return Start(std::make_unique<GetIdOperation>(info.Env(), op, HandleArg<ImageNative>(info, 0, op)));
}

// Implements: int rbd_resize(rbd_image_t image, uint64_t size)
class ResizeOperation : public ImageOperation {
 public:
  ResizeOperation(Napi::Env env, const char* op, std::shared_ptr<ImageNative> image, uint64_t size)
      : ImageOperation(env, op, std::move(image)), size_(size) {}
  int Execute() override { return rbd_resize(image_, size_); }

 private:
  uint64_t size_;
};

Napi::Value Resize(const Napi::CallbackInfo& info) {
  const char* op = "rbd_resize";
  auto image = HandleArg<ImageNative>(info, 0, op);
  return Start(std::make_unique<ResizeOperation>(info.Env(), op, image, Uint64Arg(info, 1, "size", op)));
}

// Implements: ssize_t rbd_write2(rbd_image_t image, uint64_t ofs, size_t len, const char *buf, int op_flags)
class WriteOperation : public ImageOperation {
 public:
  WriteOperation(Napi::Env env, const char* op, std::shared_ptr<ImageNative> image, uint64_t offset,
                 std::vector<char> data)
      : ImageOperation(env, op, std::move(image)), offset_(offset), data_(std::move(data)) {}
  int Execute() override {
    ssize_t r = rbd_write2(image_, offset_, data_.size(), data_.data(), 0);
    if (r < 0) return static_cast<int>(r);
    written_ = static_cast<size_t>(r);
    return 0;
  }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, static_cast<double>(written_)); }

 private:
  uint64_t offset_;
  std::vector<char> data_;  // a copy: the caller's Buffer may be collected while the write runs
  size_t written_ = 0;
};

Napi::Value Write(const Napi::CallbackInfo& info) {
  const char* op = "rbd_write2";
  auto image = HandleArg<ImageNative>(info, 0, op);
  uint64_t offset = Uint64Arg(info, 1, "offset", op);
  return Start(std::make_unique<WriteOperation>(info.Env(), op, image, offset, BufferArg(info, 2, "data", op)));
}

// Implements: ssize_t rbd_read2(rbd_image_t image, uint64_t ofs, size_t len, char *buf, int op_flags)
class ReadOperation : public ImageOperation {
 public:
  ReadOperation(Napi::Env env, const char* op, std::shared_ptr<ImageNative> image, uint64_t offset, size_t length)
      : ImageOperation(env, op, std::move(image)), offset_(offset), data_(length) {}
  int Execute() override {
    ssize_t r = rbd_read2(image_, offset_, data_.size(), data_.data(), 0);
    if (r < 0) return static_cast<int>(r);
    data_.resize(static_cast<size_t>(r));
    return 0;
  }
  Napi::Value Result(Napi::Env env) override { return Napi::Buffer<char>::Copy(env, data_.data(), data_.size()); }

 private:
  uint64_t offset_;
  std::vector<char> data_;
};

Napi::Value Read(const Napi::CallbackInfo& info) {
  const char* op = "rbd_read2";
  auto image = HandleArg<ImageNative>(info, 0, op);
  uint64_t offset = Uint64Arg(info, 1, "offset", op);
  uint64_t length = Uint64Arg(info, 2, "length", op);
  // One call reads at most 64 MiB: larger reads are split by the caller.
  if (length > (64u << 20)) throw ArgError(info.Env(), op, "length must be at most 64 MiB");
  return Start(std::make_unique<ReadOperation>(info.Env(), op, image, offset, static_cast<size_t>(length)));
}

// Implements: int rbd_flatten(rbd_image_t image)
class FlattenOperation : public ImageOperation {
 public:
  using ImageOperation::ImageOperation;
  int Execute() override { return rbd_flatten(image_); }
};

Napi::Value Flatten(const Napi::CallbackInfo& info) {
  const char* op = "rbd_flatten";
  return Start(std::make_unique<FlattenOperation>(info.Env(), op, HandleArg<ImageNative>(info, 0, op)));
}

// Implements: int rbd_metadata_get(rbd_image_t image, const char *key, char *value, size_t *val_len)
class MetadataGetOperation : public ImageOperation {
 public:
  MetadataGetOperation(Napi::Env env, const char* op, std::shared_ptr<ImageNative> image, std::string key)
      : ImageOperation(env, op, std::move(image)), key_(std::move(key)) {}
  int Execute() override {
    std::vector<char> buf;
    int r = GrowToFit(*this, "bytes", 256, [&](size_t& size) {
      buf.resize(size);
      return rbd_metadata_get(image_, key_.c_str(), buf.data(), &size);
    });
    if (r < 0) return r;
    value_.assign(buf.data(), strnlen(buf.data(), buf.size()));
    return 0;
  }
  Napi::Value Result(Napi::Env env) override { return Napi::String::New(env, value_); }

 private:
  std::string key_, value_;
};

Napi::Value MetadataGet(const Napi::CallbackInfo& info) {
  const char* op = "rbd_metadata_get";
  auto image = HandleArg<ImageNative>(info, 0, op);
  return Start(std::make_unique<MetadataGetOperation>(info.Env(), op, image, StringArg(info, 1, "key", op)));
}

// Implements: int rbd_metadata_set(rbd_image_t image, const char *key, const char *value)
class MetadataSetOperation : public ImageOperation {
 public:
  MetadataSetOperation(Napi::Env env, const char* op, std::shared_ptr<ImageNative> image, std::string key,
                       std::string value)
      : ImageOperation(env, op, std::move(image)), key_(std::move(key)), value_(std::move(value)) {}
  int Execute() override { return rbd_metadata_set(image_, key_.c_str(), value_.c_str()); }

 private:
  std::string key_, value_;
};

Napi::Value MetadataSet(const Napi::CallbackInfo& info) {
  const char* op = "rbd_metadata_set";
  auto image = HandleArg<ImageNative>(info, 0, op);
  std::string key = StringArg(info, 1, "key", op);
  std::string value = StringArg(info, 2, "value", op);
  return Start(std::make_unique<MetadataSetOperation>(info.Env(), op, image, key, value));
}

// Implements: int rbd_metadata_remove(rbd_image_t image, const char *key)
class MetadataRemoveOperation : public ImageOperation {
 public:
  MetadataRemoveOperation(Napi::Env env, const char* op, std::shared_ptr<ImageNative> image, std::string key)
      : ImageOperation(env, op, std::move(image)), key_(std::move(key)) {}
  int Execute() override { return rbd_metadata_remove(image_, key_.c_str()); }

 private:
  std::string key_;
};

Napi::Value MetadataRemove(const Napi::CallbackInfo& info) {
  const char* op = "rbd_metadata_remove";
  auto image = HandleArg<ImageNative>(info, 0, op);
  return Start(std::make_unique<MetadataRemoveOperation>(info.Env(), op, image, StringArg(info, 1, "key", op)));
}

// Implements: int rbd_metadata_list(rbd_image_t image, const char *start, uint64_t max, char *keys,
//             size_t *key_len, char *values, size_t *vals_len)
class MetadataListOperation : public ImageOperation {
 public:
  using ImageOperation::ImageOperation;
  int Execute() override {
    // Keys and values get buffers of the same size: the larger of the two librbd asks for.
    std::vector<char> keys, values;
    size_t keys_len = 0;
    int r = GrowToFit(*this, "bytes", 4096, [&](size_t& size) {
      keys.resize(size);
      values.resize(size);
      keys_len = size;
      size_t values_len = size;
      int r = rbd_metadata_list(image_, "", 0, keys.data(), &keys_len, values.data(), &values_len);
      size = keys_len > values_len ? keys_len : values_len;
      return r;
    });
    if (r < 0) return r;
    const char* k = keys.data();
    const char* v = values.data();
    while (k < keys.data() + keys_len && *k != '\0') {
      entries_.emplace_back(k, v);
      k += std::strlen(k) + 1;
      v += std::strlen(v) + 1;
    }
    return 0;
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    for (const auto& [key, value] : entries_) o.Set(key, value);
    return o;
  }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

Napi::Value MetadataList(const Napi::CallbackInfo& info) {
  const char* op = "rbd_metadata_list";
  return Start(std::make_unique<MetadataListOperation>(info.Env(), op, HandleArg<ImageNative>(info, 0, op)));
}

// Implements: int rbd_watchers_list(rbd_image_t image, rbd_image_watcher_t *watchers, size_t *max_watchers)
class WatchersListOperation : public ImageOperation {
 public:
  using ImageOperation::ImageOperation;
  int Execute() override {
    std::vector<rbd_image_watcher_t> watchers;
    size_t found = 0;
    int r = GrowToFit(*this, "entries", 8, [&](size_t& count) {
      watchers.resize(count);
      int r = rbd_watchers_list(image_, watchers.data(), &count);
      found = count;
      return r;
    });
    if (r < 0) return r;
    for (size_t i = 0; i < found; ++i) items_.push_back({watchers[i].addr, watchers[i].id, watchers[i].cookie});
    rbd_watchers_list_cleanup(watchers.data(), found);
    return 0;
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array a = Napi::Array::New(env, items_.size());
    for (size_t i = 0; i < items_.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("address", items_[i].address);
      o.Set("id", static_cast<double>(items_[i].id));
      // A 64-bit cookie does not fit a JS number exactly.
      o.Set("cookie", std::to_string(items_[i].cookie));
      a.Set(i, o);
    }
    return a;
  }

 private:
  struct Item {
    std::string address;
    int64_t id;
    uint64_t cookie;
  };
  std::vector<Item> items_;
};

Napi::Value WatchersList(const Napi::CallbackInfo& info) {
  const char* op = "rbd_watchers_list";
  return Start(std::make_unique<WatchersListOperation>(info.Env(), op, HandleArg<ImageNative>(info, 0, op)));
}

// Implements: int rbd_snap_list(rbd_image_t image, rbd_snap_info_t *snaps, int *max_snaps)
class SnapListOperation : public ImageOperation {
 public:
  using ImageOperation::ImageOperation;
  int Execute() override {
    std::vector<rbd_snap_info_t> snaps;
    int r = GrowToFit(*this, "entries", 16, [&](size_t& count) {
      snaps.resize(count);
      int max = static_cast<int>(count);  // count never passes kGrowLimit, so it fits an int
      int r = rbd_snap_list(image_, snaps.data(), &max);
      if (max > 0) count = static_cast<size_t>(max);
      return r;
    });
    if (r < 0) return r;
    for (int i = 0; i < r; ++i) items_.push_back({snaps[i].id, snaps[i].size, snaps[i].name});
    rbd_snap_list_end(snaps.data());
    return 0;
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array a = Napi::Array::New(env, items_.size());
    for (size_t i = 0; i < items_.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("id", static_cast<double>(items_[i].id));
      o.Set("size", static_cast<double>(items_[i].size));
      o.Set("name", items_[i].name);
      a.Set(i, o);
    }
    return a;
  }

 private:
  struct Item {
    uint64_t id, size;
    std::string name;
  };
  std::vector<Item> items_;
};

Napi::Value SnapList(const Napi::CallbackInfo& info) {
  const char* op = "rbd_snap_list";
  return Start(std::make_unique<SnapListOperation>(info.Env(), op, HandleArg<ImageNative>(info, 0, op)));
}

// Implements: int rbd_snap_get_namespace_type(rbd_image_t image, uint64_t snap_id,
//             rbd_snap_namespace_type_t *namespace_type)
class SnapGetNamespaceTypeOperation : public ImageOperation {
 public:
  SnapGetNamespaceTypeOperation(Napi::Env env, const char* op, std::shared_ptr<ImageNative> image, uint64_t snap_id)
      : ImageOperation(env, op, std::move(image)), snap_id_(snap_id) {}
  int Execute() override { return rbd_snap_get_namespace_type(image_, snap_id_, &type_); }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, static_cast<double>(type_)); }

 private:
  uint64_t snap_id_;
  rbd_snap_namespace_type_t type_ = RBD_SNAP_NAMESPACE_TYPE_USER;
};

Napi::Value SnapGetNamespaceType(const Napi::CallbackInfo& info) {
  const char* op = "rbd_snap_get_namespace_type";
  auto image = HandleArg<ImageNative>(info, 0, op);
  return Start(std::make_unique<SnapGetNamespaceTypeOperation>(info.Env(), op, image, Uint64Arg(info, 1, "snapId", op)));
}

// Implements: int rbd_get_parent(rbd_image_t image, rbd_linked_image_spec_t *parent_image,
//             rbd_snap_spec_t *parent_snap)
class GetParentOperation : public ImageOperation {
 public:
  using ImageOperation::ImageOperation;
  int Execute() override {
    rbd_linked_image_spec_t image{};
    rbd_snap_spec_t snap{};
    int r = rbd_get_parent(image_, &image, &snap);
    if (r < 0) return r;
    pool_ = image.pool_name;
    namespace_ = image.pool_namespace;
    image_name_ = image.image_name;
    image_id_ = image.image_id;
    trash_ = image.trash;
    snap_id_ = snap.id;
    snap_name_ = snap.name;
    rbd_linked_image_spec_cleanup(&image);
    rbd_snap_spec_cleanup(&snap);
    return 0;
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("pool", pool_);
    o.Set("namespace", namespace_);
    o.Set("imageName", image_name_);
    o.Set("imageId", image_id_);
    o.Set("trash", trash_);
    o.Set("snapId", static_cast<double>(snap_id_));
    o.Set("snapName", snap_name_);
    return o;
  }

 private:
  std::string pool_, namespace_, image_name_, image_id_, snap_name_;
  bool trash_ = false;
  uint64_t snap_id_ = 0;
};

Napi::Value GetParent(const Napi::CallbackInfo& info) {
  const char* op = "rbd_get_parent";
  return Start(std::make_unique<GetParentOperation>(info.Env(), op, HandleArg<ImageNative>(info, 0, op)));
}

// The calls that take an image and a snapshot name and return only a status.
class SnapChangeOperation : public ImageOperation {
 public:
  using Call = int (*)(rbd_image_t, const char*);
  SnapChangeOperation(Napi::Env env, const char* op, std::shared_ptr<ImageNative> image, std::string snap, Call call)
      : ImageOperation(env, op, std::move(image)), snap_(std::move(snap)), call_(call) {}
  int Execute() override { return call_(image_, snap_.c_str()); }

 private:
  std::string snap_;
  Call call_;
};

template <int (*CALL)(rbd_image_t, const char*)>
Napi::Value SnapChange(const Napi::CallbackInfo& info, const char* op) {
  auto image = HandleArg<ImageNative>(info, 0, op);
  return Start(std::make_unique<SnapChangeOperation>(info.Env(), op, image, StringArg(info, 1, "snapName", op), CALL));
}

// Implements: int rbd_snap_create(rbd_image_t image, const char *snapname)
Napi::Value SnapCreate(const Napi::CallbackInfo& info) { return SnapChange<rbd_snap_create>(info, "rbd_snap_create"); }

// Implements: int rbd_snap_remove(rbd_image_t image, const char *snapname)
Napi::Value SnapRemove(const Napi::CallbackInfo& info) { return SnapChange<rbd_snap_remove>(info, "rbd_snap_remove"); }

// Implements: int rbd_snap_protect(rbd_image_t image, const char *snap_name)
Napi::Value SnapProtect(const Napi::CallbackInfo& info) {
  return SnapChange<rbd_snap_protect>(info, "rbd_snap_protect");
}

// Implements: int rbd_snap_unprotect(rbd_image_t image, const char *snap_name)
Napi::Value SnapUnprotect(const Napi::CallbackInfo& info) {
  return SnapChange<rbd_snap_unprotect>(info, "rbd_snap_unprotect");
}

// Implements: int rbd_snap_is_protected(rbd_image_t image, const char *snap_name, int *is_protected)
class SnapIsProtectedOperation : public ImageOperation {
 public:
  SnapIsProtectedOperation(Napi::Env env, const char* op, std::shared_ptr<ImageNative> image, std::string snap)
      : ImageOperation(env, op, std::move(image)), snap_(std::move(snap)) {}
  int Execute() override { return rbd_snap_is_protected(image_, snap_.c_str(), &protected_); }
  Napi::Value Result(Napi::Env env) override { return Napi::Boolean::New(env, protected_ != 0); }

 private:
  std::string snap_;
  int protected_ = 0;
};

Napi::Value SnapIsProtected(const Napi::CallbackInfo& info) {
  const char* op = "rbd_snap_is_protected";
  auto image = HandleArg<ImageNative>(info, 0, op);
  return Start(
      std::make_unique<SnapIsProtectedOperation>(info.Env(), op, image, StringArg(info, 1, "snapName", op)));
}

}  // namespace

void InitRbdImage(Napi::Env env, Napi::Object exports) {
  Export<Close>(env, exports, "rbdClose");
  Export<Stat>(env, exports, "rbdStat");
  Export<GetFeatures>(env, exports, "rbdGetFeatures");
  Export<GetId>(env, exports, "rbdGetId");
  Export<Resize>(env, exports, "rbdResize");
  Export<Flatten>(env, exports, "rbdFlatten");
  Export<Write>(env, exports, "rbdWrite2");
  Export<Read>(env, exports, "rbdRead2");
  Export<MetadataGet>(env, exports, "rbdMetadataGet");
  Export<MetadataSet>(env, exports, "rbdMetadataSet");
  Export<MetadataRemove>(env, exports, "rbdMetadataRemove");
  Export<MetadataList>(env, exports, "rbdMetadataList");
  Export<WatchersList>(env, exports, "rbdWatchersList");
  Export<SnapList>(env, exports, "rbdSnapList");
  Export<SnapCreate>(env, exports, "rbdSnapCreate");
  Export<SnapRemove>(env, exports, "rbdSnapRemove");
  Export<SnapProtect>(env, exports, "rbdSnapProtect");
  Export<SnapUnprotect>(env, exports, "rbdSnapUnprotect");
  Export<SnapIsProtected>(env, exports, "rbdSnapIsProtected");
  Export<SnapGetNamespaceType>(env, exports, "rbdSnapGetNamespaceType");
  Export<GetParent>(env, exports, "rbdGetParent");
}

}  // namespace rbdnative
