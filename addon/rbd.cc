// librbd: images in a pool, and operations on an open image.
#include <rbd/librbd.h>

#include <cstring>
#include <utility>
#include <vector>

#include "args.h"
#include "exports.h"
#include "handles.h"

namespace rbdnative {
namespace {

std::string Join(const std::string& a, const std::string& b) { return a + "/" + b; }

// A call on a pool's I/O context.
class IoCtxOperation : public Operation {
 public:
  IoCtxOperation(Napi::Env env, const char* op, std::shared_ptr<IoCtxNative> io, const std::string& image)
      : Operation(env, op, image.empty() ? io->label : Join(io->label, image)), io_(io->ioctx), image_(image) {
    KeepAlive(std::move(io));
  }

 protected:
  rados_ioctx_t io_;
  std::string image_;
};

// A call on an open image.
class ImageOperation : public Operation {
 public:
  ImageOperation(Napi::Env env, const char* op, std::shared_ptr<ImageNative> image)
      : Operation(env, op, image->label), image_(image->image) {
    KeepAlive(std::move(image));
  }

 protected:
  rbd_image_t image_;
};

std::shared_ptr<IoCtxNative> IoCtxArg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  return Unwrap<IoCtxNative>(info.Env(), info[i], op);
}

std::shared_ptr<ImageNative> ImageArg(const Napi::CallbackInfo& info, const char* op) {
  return Unwrap<ImageNative>(info.Env(), info[0], op);
}

// Image creation options, as rbd_image_options_t wants them. Absent fields keep librbd's defaults.
struct ImageOptions {
  std::vector<std::pair<int, uint64_t>> numbers;
  std::string data_pool;

  static ImageOptions From(Napi::Env env, Napi::Object o, const char* op) {
    ImageOptions options;
    const std::pair<const char*, int> fields[] = {{"format", RBD_IMAGE_OPTION_FORMAT},
                                                  {"features", RBD_IMAGE_OPTION_FEATURES},
                                                  {"order", RBD_IMAGE_OPTION_ORDER},
                                                  {"stripeUnit", RBD_IMAGE_OPTION_STRIPE_UNIT},
                                                  {"stripeCount", RBD_IMAGE_OPTION_STRIPE_COUNT}};
    for (const auto& [name, option] : fields) {
      Napi::Value v = o.Get(name);
      if (!v.IsUndefined()) options.numbers.emplace_back(option, Uint64(env, v, name, op));
    }
    Napi::Value pool = o.Get("dataPool");
    if (!pool.IsUndefined()) {
      if (!pool.IsString()) throw ArgError(env, op, "options.dataPool must be a string");
      options.data_pool = pool.As<Napi::String>().Utf8Value();
    }
    return options;
  }

  // The caller owns the returned handle and must rbd_image_options_destroy it.
  int Build(rbd_image_options_t* out) const {
    rbd_image_options_create(out);
    for (const auto& [option, value] : numbers) {
      int r = rbd_image_options_set_uint64(*out, option, value);
      if (r < 0) return r;
    }
    if (!data_pool.empty()) return rbd_image_options_set_string(*out, RBD_IMAGE_OPTION_DATA_POOL, data_pool.c_str());
    return 0;
  }
};

// Implements: int rbd_create4(rados_ioctx_t io, const char *name, uint64_t size, rbd_image_options_t opts)
class CreateOperation : public IoCtxOperation {
 public:
  CreateOperation(Napi::Env env, const char* op, std::shared_ptr<IoCtxNative> io, std::string name, uint64_t size,
                  ImageOptions options)
      : IoCtxOperation(env, op, std::move(io), name), size_(size), options_(std::move(options)) {}
  int Execute() override {
    rbd_image_options_t opts;
    int r = options_.Build(&opts);
    if (r >= 0) r = rbd_create4(io_, image_.c_str(), size_, opts);
    rbd_image_options_destroy(opts);
    return r;
  }

 private:
  uint64_t size_;
  ImageOptions options_;
};

Napi::Value Create(const Napi::CallbackInfo& info) {
  const char* op = "rbd_create4";
  Napi::Env env = info.Env();
  auto io = IoCtxArg(info, 0, op);
  std::string name = StringArg(info, 1, "name", op);
  uint64_t size = Uint64Arg(info, 2, "size", op);
  ImageOptions options = ImageOptions::From(env, ObjectArg(info, 3, "options", op), op);
  return Start(std::make_unique<CreateOperation>(env, op, io, name, size, std::move(options)));
}

// Implements: int rbd_clone3(rados_ioctx_t p_ioctx, const char *p_name, const char *p_snapname,
//             rados_ioctx_t c_ioctx, const char *c_name, rbd_image_options_t c_opts)
class CloneOperation : public IoCtxOperation {
 public:
  CloneOperation(Napi::Env env, const char* op, std::shared_ptr<IoCtxNative> parent_io, std::string parent,
                 std::string snap, std::shared_ptr<IoCtxNative> child_io, std::string child, ImageOptions options)
      : IoCtxOperation(env, op, child_io, child),
        parent_io_(parent_io->ioctx),
        parent_(std::move(parent)),
        snap_(std::move(snap)),
        options_(std::move(options)) {
    KeepAlive(std::move(parent_io));
  }
  int Execute() override {
    rbd_image_options_t opts;
    int r = options_.Build(&opts);
    if (r >= 0) r = rbd_clone3(parent_io_, parent_.c_str(), snap_.c_str(), io_, image_.c_str(), opts);
    rbd_image_options_destroy(opts);
    return r;
  }

 private:
  rados_ioctx_t parent_io_;
  std::string parent_, snap_;
  ImageOptions options_;
};

Napi::Value Clone(const Napi::CallbackInfo& info) {
  const char* op = "rbd_clone3";
  Napi::Env env = info.Env();
  auto parent_io = IoCtxArg(info, 0, op);
  std::string parent = StringArg(info, 1, "parentName", op);
  std::string snap = StringArg(info, 2, "parentSnapName", op);
  auto child_io = IoCtxArg(info, 3, op);
  std::string child = StringArg(info, 4, "name", op);
  ImageOptions options = ImageOptions::From(env, ObjectArg(info, 5, "options", op), op);
  return Start(std::make_unique<CloneOperation>(env, op, parent_io, parent, snap, child_io, child,
                                                std::move(options)));
}

// Implements: int rbd_remove(rados_ioctx_t io, const char *name)
class RemoveOperation : public IoCtxOperation {
 public:
  using IoCtxOperation::IoCtxOperation;
  int Execute() override { return rbd_remove(io_, image_.c_str()); }
};

Napi::Value Remove(const Napi::CallbackInfo& info) {
  const char* op = "rbd_remove";
  auto io = IoCtxArg(info, 0, op);
  return Start(std::make_unique<RemoveOperation>(info.Env(), op, io, StringArg(info, 1, "name", op)));
}

// Implements: int rbd_trash_move(rados_ioctx_t io, const char *name, uint64_t delay)
class TrashMoveOperation : public IoCtxOperation {
 public:
  TrashMoveOperation(Napi::Env env, const char* op, std::shared_ptr<IoCtxNative> io, std::string name,
                     uint64_t delay)
      : IoCtxOperation(env, op, std::move(io), name), delay_(delay) {}
  int Execute() override { return rbd_trash_move(io_, image_.c_str(), delay_); }

 private:
  uint64_t delay_;
};

Napi::Value TrashMove(const Napi::CallbackInfo& info) {
  const char* op = "rbd_trash_move";
  auto io = IoCtxArg(info, 0, op);
  std::string name = StringArg(info, 1, "name", op);
  uint64_t delay = info[2].IsUndefined() ? 0 : Uint64Arg(info, 2, "delaySeconds", op);
  return Start(std::make_unique<TrashMoveOperation>(info.Env(), op, io, name, delay));
}

// Implements: int rbd_trash_list(rados_ioctx_t io, rbd_trash_image_info_t *trash_entries, size_t *num_entries)
class TrashListOperation : public IoCtxOperation {
 public:
  using IoCtxOperation::IoCtxOperation;
  int Execute() override {
    std::vector<rbd_trash_image_info_t> entries(32);
    for (;;) {
      size_t count = entries.size();
      int r = rbd_trash_list(io_, entries.data(), &count);
      if (r == -ERANGE) {
        entries.resize(count > entries.size() ? count : entries.size() * 2);
        continue;
      }
      if (r < 0) return r;
      for (size_t i = 0; i < static_cast<size_t>(r); ++i) {
        const auto& e = entries[i];
        items_.push_back({e.id, e.name, static_cast<int>(e.source), static_cast<double>(e.deletion_time),
                          static_cast<double>(e.deferment_end_time)});
      }
      rbd_trash_list_cleanup(entries.data(), r);
      return 0;
    }
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array a = Napi::Array::New(env, items_.size());
    for (size_t i = 0; i < items_.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("id", items_[i].id);
      o.Set("name", items_[i].name);
      o.Set("source", items_[i].source);
      o.Set("deletionTime", items_[i].deletion_time);
      o.Set("defermentEndTime", items_[i].deferment_end_time);
      a.Set(i, o);
    }
    return a;
  }

 private:
  struct Item {
    std::string id, name;
    int source;
    double deletion_time, deferment_end_time;
  };
  std::vector<Item> items_;
};

Napi::Value TrashList(const Napi::CallbackInfo& info) {
  const char* op = "rbd_trash_list";
  return Start(std::make_unique<TrashListOperation>(info.Env(), op, IoCtxArg(info, 0, op), ""));
}

// Implements: int rbd_trash_remove(rados_ioctx_t io, const char *id, bool force)
class TrashRemoveOperation : public IoCtxOperation {
 public:
  TrashRemoveOperation(Napi::Env env, const char* op, std::shared_ptr<IoCtxNative> io, std::string id, bool force)
      : IoCtxOperation(env, op, std::move(io), "trash:" + id), id_(std::move(id)), force_(force) {}
  int Execute() override { return rbd_trash_remove(io_, id_.c_str(), force_); }

 private:
  std::string id_;
  bool force_;
};

Napi::Value TrashRemove(const Napi::CallbackInfo& info) {
  const char* op = "rbd_trash_remove";
  auto io = IoCtxArg(info, 0, op);
  std::string id = StringArg(info, 1, "id", op);
  bool force = BoolArg(info, 2, "force", op);
  return Start(std::make_unique<TrashRemoveOperation>(info.Env(), op, io, id, force));
}

// Implements: int rbd_list2(rados_ioctx_t io, rbd_image_spec_t *images, size_t *max_images)
class ListOperation : public IoCtxOperation {
 public:
  using IoCtxOperation::IoCtxOperation;
  int Execute() override {
    std::vector<rbd_image_spec_t> specs(64);
    for (;;) {
      size_t count = specs.size();
      int r = rbd_list2(io_, specs.data(), &count);
      if (r == -ERANGE) {
        specs.resize(count > specs.size() ? count : specs.size() * 2);
        continue;
      }
      if (r < 0) return r;
      for (size_t i = 0; i < count; ++i) items_.emplace_back(specs[i].id, specs[i].name);
      rbd_image_spec_list_cleanup(specs.data(), count);
      return 0;
    }
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array a = Napi::Array::New(env, items_.size());
    for (size_t i = 0; i < items_.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("id", items_[i].first);
      o.Set("name", items_[i].second);
      a.Set(i, o);
    }
    return a;
  }

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

Napi::Value List(const Napi::CallbackInfo& info) {
  const char* op = "rbd_list2";
  return Start(std::make_unique<ListOperation>(info.Env(), op, IoCtxArg(info, 0, op), ""));
}

// Implements: int rbd_pool_init(rados_ioctx_t io, bool force)
class PoolInitOperation : public IoCtxOperation {
 public:
  PoolInitOperation(Napi::Env env, const char* op, std::shared_ptr<IoCtxNative> io, bool force)
      : IoCtxOperation(env, op, std::move(io), ""), force_(force) {}
  int Execute() override { return rbd_pool_init(io_, force_); }

 private:
  bool force_;
};

Napi::Value PoolInit(const Napi::CallbackInfo& info) {
  const char* op = "rbd_pool_init";
  auto io = IoCtxArg(info, 0, op);
  return Start(std::make_unique<PoolInitOperation>(info.Env(), op, io, BoolArg(info, 1, "force", op)));
}

// Implements: int rbd_open(rados_ioctx_t io, const char *name, rbd_image_t *image, const char *snap_name),
//             int rbd_open_read_only(...) (read-only opens register no watch and take no lock), and
//             int rbd_open_by_id(...) / rbd_open_by_id_read_only(...) (images in the trash have only an id)
class OpenOperation : public IoCtxOperation {
 public:
  OpenOperation(Napi::Env env, const char* op, std::shared_ptr<IoCtxNative> io, std::string name, bool read_only,
                bool by_id)
      : IoCtxOperation(env, op, io, by_id ? "id:" + name : name),
        owner_(std::move(io)),
        key_(std::move(name)),
        read_only_(read_only),
        by_id_(by_id) {}
  int Execute() override {
    rbd_image_t image = nullptr;
    int r;
    if (by_id_) {
      r = read_only_ ? rbd_open_by_id_read_only(io_, key_.c_str(), &image, nullptr)
                     : rbd_open_by_id(io_, key_.c_str(), &image, nullptr);
    } else {
      r = read_only_ ? rbd_open_read_only(io_, key_.c_str(), &image, nullptr)
                     : rbd_open(io_, key_.c_str(), &image, nullptr);
    }
    if (r < 0) {
      // Drop our reference here, on the pool thread: it may be the last one, and destroying an ioctx blocks.
      owner_.reset();
      return r;
    }
    native_ = std::make_shared<ImageNative>();
    native_->label = Join(owner_->label, image_);
    native_->ioctx = std::move(owner_);
    native_->image = image;
    return 0;
  }
  Napi::Value Result(Napi::Env env) override { return WrapHandle(env, std::move(native_)); }

 private:
  std::shared_ptr<IoCtxNative> owner_;
  std::string key_;
  bool read_only_;
  bool by_id_;
  std::shared_ptr<ImageNative> native_;
};

Napi::Value Open(const Napi::CallbackInfo& info) {
  const char* op = "rbd_open";
  auto io = IoCtxArg(info, 0, op);
  std::string name = StringArg(info, 1, "name", op);
  bool read_only = BoolArg(info, 2, "readOnly", op);
  return Start(std::make_unique<OpenOperation>(info.Env(), read_only ? "rbd_open_read_only" : op, io, name,
                                               read_only, false));
}

Napi::Value OpenById(const Napi::CallbackInfo& info) {
  const char* op = "rbd_open_by_id";
  auto io = IoCtxArg(info, 0, op);
  std::string id = StringArg(info, 1, "id", op);
  bool read_only = BoolArg(info, 2, "readOnly", op);
  return Start(std::make_unique<OpenOperation>(info.Env(), read_only ? "rbd_open_by_id_read_only" : op, io, id,
                                               read_only, true));
}

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
  return Start(std::make_unique<StatOperation>(info.Env(), op, ImageArg(info, op)));
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
  return Start(std::make_unique<GetFeaturesOperation>(info.Env(), op, ImageArg(info, op)));
}

// Implements: int rbd_get_id(rbd_image_t image, char *id, size_t id_len)
class GetIdOperation : public ImageOperation {
 public:
  using ImageOperation::ImageOperation;
  int Execute() override {
    std::vector<char> buf(32);
    int r;
    while ((r = rbd_get_id(image_, buf.data(), buf.size())) == -ERANGE) buf.resize(buf.size() * 2);
    if (r < 0) return r;
    id_ = buf.data();
    return 0;
  }
  Napi::Value Result(Napi::Env env) override { return Napi::String::New(env, id_); }

 private:
  std::string id_;
};

Napi::Value GetId(const Napi::CallbackInfo& info) {
  const char* op = "rbd_get_id";
  return Start(std::make_unique<GetIdOperation>(info.Env(), op, ImageArg(info, op)));
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
  auto image = ImageArg(info, op);
  return Start(std::make_unique<ResizeOperation>(info.Env(), op, image, Uint64Arg(info, 1, "size", op)));
}

// Implements: int rbd_flatten(rbd_image_t image)
class FlattenOperation : public ImageOperation {
 public:
  using ImageOperation::ImageOperation;
  int Execute() override { return rbd_flatten(image_); }
};

Napi::Value Flatten(const Napi::CallbackInfo& info) {
  const char* op = "rbd_flatten";
  return Start(std::make_unique<FlattenOperation>(info.Env(), op, ImageArg(info, op)));
}

// Implements: int rbd_metadata_get(rbd_image_t image, const char *key, char *value, size_t *val_len)
class MetadataGetOperation : public ImageOperation {
 public:
  MetadataGetOperation(Napi::Env env, const char* op, std::shared_ptr<ImageNative> image, std::string key)
      : ImageOperation(env, op, std::move(image)), key_(std::move(key)) {}
  int Execute() override {
    std::vector<char> buf(256);
    for (;;) {
      size_t len = buf.size();
      int r = rbd_metadata_get(image_, key_.c_str(), buf.data(), &len);
      if (r == -ERANGE) {
        buf.resize(len > buf.size() ? len : buf.size() * 2);
        continue;
      }
      if (r < 0) return r;
      value_.assign(buf.data(), strnlen(buf.data(), len));
      return 0;
    }
  }
  Napi::Value Result(Napi::Env env) override { return Napi::String::New(env, value_); }

 private:
  std::string key_, value_;
};

Napi::Value MetadataGet(const Napi::CallbackInfo& info) {
  const char* op = "rbd_metadata_get";
  auto image = ImageArg(info, op);
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
  auto image = ImageArg(info, op);
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
  auto image = ImageArg(info, op);
  return Start(std::make_unique<MetadataRemoveOperation>(info.Env(), op, image, StringArg(info, 1, "key", op)));
}

// Implements: int rbd_metadata_list(rbd_image_t image, const char *start, uint64_t max, char *keys,
//             size_t *key_len, char *values, size_t *vals_len)
class MetadataListOperation : public ImageOperation {
 public:
  using ImageOperation::ImageOperation;
  int Execute() override {
    std::vector<char> keys(1024), values(4096);
    for (;;) {
      size_t keys_len = keys.size(), values_len = values.size();
      int r = rbd_metadata_list(image_, "", 0, keys.data(), &keys_len, values.data(), &values_len);
      if (r == -ERANGE) {
        keys.resize(keys_len > keys.size() ? keys_len : keys.size() * 2);
        values.resize(values_len > values.size() ? values_len : values.size() * 2);
        continue;
      }
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
  return Start(std::make_unique<MetadataListOperation>(info.Env(), op, ImageArg(info, op)));
}

// Implements: int rbd_watchers_list(rbd_image_t image, rbd_image_watcher_t *watchers, size_t *max_watchers)
class WatchersListOperation : public ImageOperation {
 public:
  using ImageOperation::ImageOperation;
  int Execute() override {
    std::vector<rbd_image_watcher_t> watchers(8);
    for (;;) {
      size_t count = watchers.size();
      int r = rbd_watchers_list(image_, watchers.data(), &count);
      if (r == -ERANGE) {
        watchers.resize(count > watchers.size() ? count : watchers.size() * 2);
        continue;
      }
      if (r < 0) return r;
      for (size_t i = 0; i < count; ++i) {
        items_.push_back({watchers[i].addr, watchers[i].id, watchers[i].cookie});
      }
      rbd_watchers_list_cleanup(watchers.data(), count);
      return 0;
    }
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
  return Start(std::make_unique<WatchersListOperation>(info.Env(), op, ImageArg(info, op)));
}

// Implements: int rbd_snap_list(rbd_image_t image, rbd_snap_info_t *snaps, int *max_snaps)
class SnapListOperation : public ImageOperation {
 public:
  using ImageOperation::ImageOperation;
  int Execute() override {
    std::vector<rbd_snap_info_t> snaps(16);
    for (;;) {
      int max = static_cast<int>(snaps.size());
      int r = rbd_snap_list(image_, snaps.data(), &max);
      if (r == -ERANGE) {
        snaps.resize(static_cast<size_t>(max) > snaps.size() ? max : snaps.size() * 2);
        continue;
      }
      if (r < 0) return r;
      for (int i = 0; i < r; ++i) items_.push_back({snaps[i].id, snaps[i].size, snaps[i].name});
      rbd_snap_list_end(snaps.data());
      return 0;
    }
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
  return Start(std::make_unique<SnapListOperation>(info.Env(), op, ImageArg(info, op)));
}

// Implements: rbd_snap_create, rbd_snap_remove, rbd_snap_protect, rbd_snap_unprotect: each
//             int (rbd_image_t image, const char *snap_name)
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
  auto image = ImageArg(info, op);
  return Start(std::make_unique<SnapChangeOperation>(info.Env(), op, image, StringArg(info, 1, "snapName", op), CALL));
}

Napi::Value SnapCreate(const Napi::CallbackInfo& info) { return SnapChange<rbd_snap_create>(info, "rbd_snap_create"); }
Napi::Value SnapRemove(const Napi::CallbackInfo& info) { return SnapChange<rbd_snap_remove>(info, "rbd_snap_remove"); }
Napi::Value SnapProtect(const Napi::CallbackInfo& info) {
  return SnapChange<rbd_snap_protect>(info, "rbd_snap_protect");
}
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
  auto image = ImageArg(info, op);
  return Start(
      std::make_unique<SnapIsProtectedOperation>(info.Env(), op, image, StringArg(info, 1, "snapName", op)));
}

}  // namespace

void InitRbd(Napi::Env env, Napi::Object exports) {
  exports.Set("rbdCreate4", Napi::Function::New<Async<Create>>(env, "rbdCreate4"));
  exports.Set("rbdClone3", Napi::Function::New<Async<Clone>>(env, "rbdClone3"));
  exports.Set("rbdRemove", Napi::Function::New<Async<Remove>>(env, "rbdRemove"));
  exports.Set("rbdTrashMove", Napi::Function::New<Async<TrashMove>>(env, "rbdTrashMove"));
  exports.Set("rbdTrashList", Napi::Function::New<Async<TrashList>>(env, "rbdTrashList"));
  exports.Set("rbdTrashRemove", Napi::Function::New<Async<TrashRemove>>(env, "rbdTrashRemove"));
  exports.Set("rbdList2", Napi::Function::New<Async<List>>(env, "rbdList2"));
  exports.Set("rbdPoolInit", Napi::Function::New<Async<PoolInit>>(env, "rbdPoolInit"));
  exports.Set("rbdOpen", Napi::Function::New<Async<Open>>(env, "rbdOpen"));
  exports.Set("rbdOpenById", Napi::Function::New<Async<OpenById>>(env, "rbdOpenById"));
  exports.Set("rbdClose", Napi::Function::New<Async<Close>>(env, "rbdClose"));
  exports.Set("rbdStat", Napi::Function::New<Async<Stat>>(env, "rbdStat"));
  exports.Set("rbdGetFeatures", Napi::Function::New<Async<GetFeatures>>(env, "rbdGetFeatures"));
  exports.Set("rbdGetId", Napi::Function::New<Async<GetId>>(env, "rbdGetId"));
  exports.Set("rbdResize", Napi::Function::New<Async<Resize>>(env, "rbdResize"));
  exports.Set("rbdFlatten", Napi::Function::New<Async<Flatten>>(env, "rbdFlatten"));
  exports.Set("rbdMetadataGet", Napi::Function::New<Async<MetadataGet>>(env, "rbdMetadataGet"));
  exports.Set("rbdMetadataSet", Napi::Function::New<Async<MetadataSet>>(env, "rbdMetadataSet"));
  exports.Set("rbdMetadataRemove", Napi::Function::New<Async<MetadataRemove>>(env, "rbdMetadataRemove"));
  exports.Set("rbdMetadataList", Napi::Function::New<Async<MetadataList>>(env, "rbdMetadataList"));
  exports.Set("rbdWatchersList", Napi::Function::New<Async<WatchersList>>(env, "rbdWatchersList"));
  exports.Set("rbdSnapList", Napi::Function::New<Async<SnapList>>(env, "rbdSnapList"));
  exports.Set("rbdSnapCreate", Napi::Function::New<Async<SnapCreate>>(env, "rbdSnapCreate"));
  exports.Set("rbdSnapRemove", Napi::Function::New<Async<SnapRemove>>(env, "rbdSnapRemove"));
  exports.Set("rbdSnapProtect", Napi::Function::New<Async<SnapProtect>>(env, "rbdSnapProtect"));
  exports.Set("rbdSnapUnprotect", Napi::Function::New<Async<SnapUnprotect>>(env, "rbdSnapUnprotect"));
  exports.Set("rbdSnapIsProtected", Napi::Function::New<Async<SnapIsProtected>>(env, "rbdSnapIsProtected"));
}

}  // namespace rbdnative
