// librbd calls on a pool (an I/O context): create, clone, remove, list, trash, pool init, and open, which turns a
// pool and a name into an image handle. Calls on an open image are in rbd_image.cc.
#include <rbd/librbd.h>

#include <utility>
#include <vector>

#include "args.h"
#include "exports.h"
#include "grow.h"
#include "handles.h"

namespace rbdnative {
namespace {

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
                                                  {"stripeCount", RBD_IMAGE_OPTION_STRIPE_COUNT},
                                                  {"cloneFormat", RBD_IMAGE_OPTION_CLONE_FORMAT}};
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
  auto io = HandleArg<IoCtxNative>(info, 0, op);
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
  auto parent_io = HandleArg<IoCtxNative>(info, 0, op);
  std::string parent = StringArg(info, 1, "parentName", op);
  std::string snap = StringArg(info, 2, "parentSnapName", op);
  auto child_io = HandleArg<IoCtxNative>(info, 3, op);
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
  auto io = HandleArg<IoCtxNative>(info, 0, op);
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
  auto io = HandleArg<IoCtxNative>(info, 0, op);
  std::string name = StringArg(info, 1, "name", op);
  uint64_t delay = info[2].IsUndefined() ? 0 : Uint64Arg(info, 2, "delaySeconds", op);
  return Start(std::make_unique<TrashMoveOperation>(info.Env(), op, io, name, delay));
}

// Implements: int rbd_trash_list(rados_ioctx_t io, rbd_trash_image_info_t *trash_entries, size_t *num_entries)
class TrashListOperation : public IoCtxOperation {
 public:
  using IoCtxOperation::IoCtxOperation;
  int Execute() override {
    std::vector<rbd_trash_image_info_t> entries;
    int r = GrowToFit(*this, "entries", 32, [&](size_t& count) {
      entries.resize(count);
      return rbd_trash_list(io_, entries.data(), &count);
    });
    if (r < 0) return r;
    for (size_t i = 0; i < static_cast<size_t>(r); ++i) {
      const auto& e = entries[i];
      items_.push_back({e.id, e.name, static_cast<int>(e.source), static_cast<double>(e.deletion_time),
                        static_cast<double>(e.deferment_end_time)});
    }
    rbd_trash_list_cleanup(entries.data(), r);
    return 0;
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
  return Start(std::make_unique<TrashListOperation>(info.Env(), op, HandleArg<IoCtxNative>(info, 0, op), ""));
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
  auto io = HandleArg<IoCtxNative>(info, 0, op);
  std::string id = StringArg(info, 1, "id", op);
  bool force = BoolArg(info, 2, "force", op);
  return Start(std::make_unique<TrashRemoveOperation>(info.Env(), op, io, id, force));
}

// Implements: int rbd_list2(rados_ioctx_t io, rbd_image_spec_t *images, size_t *max_images)
class ListOperation : public IoCtxOperation {
 public:
  using IoCtxOperation::IoCtxOperation;
  int Execute() override {
    std::vector<rbd_image_spec_t> specs;
    size_t found = 0;
    int r = GrowToFit(*this, "entries", 64, [&](size_t& count) {
      specs.resize(count);
      int r = rbd_list2(io_, specs.data(), &count);
      found = count;
      return r;
    });
    if (r < 0) return r;
    for (size_t i = 0; i < found; ++i) items_.emplace_back(specs[i].id, specs[i].name);
    rbd_image_spec_list_cleanup(specs.data(), found);
    return 0;
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
  return Start(std::make_unique<ListOperation>(info.Env(), op, HandleArg<IoCtxNative>(info, 0, op), ""));
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
  auto io = HandleArg<IoCtxNative>(info, 0, op);
  return Start(std::make_unique<PoolInitOperation>(info.Env(), op, io, BoolArg(info, 1, "force", op)));
}

// The four ways to open: by name or by id (images in the trash have only an id), read-write or read-only
// (read-only opens register no watch and take no lock).
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
    native_->label = owner_->label + "/" + image_;
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

// Implements: int rbd_open(rados_ioctx_t io, const char *name, rbd_image_t *image, const char *snap_name),
//             int rbd_open_read_only(rados_ioctx_t io, const char *name, rbd_image_t *image, const char *snap_name)
Napi::Value Open(const Napi::CallbackInfo& info) {
  const char* op = "rbd_open";
  auto io = HandleArg<IoCtxNative>(info, 0, op);
  std::string name = StringArg(info, 1, "name", op);
  bool read_only = BoolArg(info, 2, "readOnly", op);
  return Start(std::make_unique<OpenOperation>(info.Env(), read_only ? "rbd_open_read_only" : op, io, name,
                                               read_only, false));
}

// Implements: int rbd_open_by_id(rados_ioctx_t io, const char *id, rbd_image_t *image, const char *snap_name),
//             int rbd_open_by_id_read_only(rados_ioctx_t io, const char *id, rbd_image_t *image, const char *snap_name)
Napi::Value OpenById(const Napi::CallbackInfo& info) {
  const char* op = "rbd_open_by_id";
  auto io = HandleArg<IoCtxNative>(info, 0, op);
  std::string id = StringArg(info, 1, "id", op);
  bool read_only = BoolArg(info, 2, "readOnly", op);
  return Start(std::make_unique<OpenOperation>(info.Env(), read_only ? "rbd_open_by_id_read_only" : op, io, id,
                                               read_only, true));
}

}  // namespace

void InitRbdPool(Napi::Env env, Napi::Object exports) {
  Export<Create>(env, exports, "rbdCreate4");
  Export<Clone>(env, exports, "rbdClone3");
  Export<Remove>(env, exports, "rbdRemove");
  Export<TrashMove>(env, exports, "rbdTrashMove");
  Export<TrashList>(env, exports, "rbdTrashList");
  Export<TrashRemove>(env, exports, "rbdTrashRemove");
  Export<List>(env, exports, "rbdList2");
  Export<PoolInit>(env, exports, "rbdPoolInit");
  Export<Open>(env, exports, "rbdOpen");
  Export<OpenById>(env, exports, "rbdOpenById");
}

}  // namespace rbdnative
