#include "runtime/model/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <utility>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF reader assumes a little-endian host"
#endif

namespace amskv {

namespace {

bool fail(std::string* err, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

bool fail(std::string* err, const char* fmt, ...) {
  if (!err) return false;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  *err = buf;
  return false;
}

// Names from the file go into messages: keep them short and printable.
std::string show(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < 80; i++) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  if (s.size() > 80) out += "...";
  return out;
}

// Bytes of one scalar metadata value; 0 for STRING and ARRAY (variable) and unknown types.
size_t scalar_size(uint32_t t) {
  switch (t) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_INT8:
    case GGUF_TYPE_BOOL:
      return 1;
    case GGUF_TYPE_UINT16:
    case GGUF_TYPE_INT16:
      return 2;
    case GGUF_TYPE_UINT32:
    case GGUF_TYPE_INT32:
    case GGUF_TYPE_FLOAT32:
      return 4;
    case GGUF_TYPE_UINT64:
    case GGUF_TYPE_INT64:
    case GGUF_TYPE_FLOAT64:
      return 8;
    default:
      return 0;
  }
}

bool is_int_type(uint32_t t) {
  return t == GGUF_TYPE_UINT8 || t == GGUF_TYPE_INT8 || t == GGUF_TYPE_UINT16 ||
         t == GGUF_TYPE_INT16 || t == GGUF_TYPE_UINT32 || t == GGUF_TYPE_INT32 ||
         t == GGUF_TYPE_UINT64 || t == GGUF_TYPE_INT64;
}

bool is_signed_type(uint32_t t) {
  return t == GGUF_TYPE_INT8 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_INT32 ||
         t == GGUF_TYPE_INT64;
}

template <typename T>
T load(const uint8_t* p) {
  T v;
  memcpy(&v, p, sizeof v);
  return v;
}

void decode_scalar(uint32_t t, const uint8_t* p, uint64_t* u, int64_t* i, double* f) {
  switch (t) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_BOOL:
      *u = p[0];
      break;
    case GGUF_TYPE_INT8:
      *i = load<int8_t>(p);
      break;
    case GGUF_TYPE_UINT16:
      *u = load<uint16_t>(p);
      break;
    case GGUF_TYPE_INT16:
      *i = load<int16_t>(p);
      break;
    case GGUF_TYPE_UINT32:
      *u = load<uint32_t>(p);
      break;
    case GGUF_TYPE_INT32:
      *i = load<int32_t>(p);
      break;
    case GGUF_TYPE_FLOAT32:
      *f = load<float>(p);
      break;
    case GGUF_TYPE_UINT64:
      *u = load<uint64_t>(p);
      break;
    case GGUF_TYPE_INT64:
      *i = load<int64_t>(p);
      break;
    case GGUF_TYPE_FLOAT64:
      *f = load<double>(p);
      break;
    default:
      break;
  }
}

// Bounds-checked cursor over the file bytes; every read names what it was reading.
struct Reader {
  const uint8_t* p;
  size_t size;
  size_t pos;
  std::string* err;

  size_t left() const { return size - pos; }

  bool need(size_t n, const char* what) {
    if (n > left()) {
      return fail(err, "truncated file: %s at offset %zu needs %zu bytes, %zu left", what, pos, n,
                  left());
    }
    return true;
  }
  bool u32(uint32_t* v, const char* what) {
    if (!need(4, what)) return false;
    *v = load<uint32_t>(p + pos);
    pos += 4;
    return true;
  }
  bool u64(uint64_t* v, const char* what) {
    if (!need(8, what)) return false;
    *v = load<uint64_t>(p + pos);
    pos += 8;
    return true;
  }
  bool str(std::string_view* s, const char* what) {
    size_t at = pos;
    uint64_t n;
    if (!u64(&n, what)) return false;
    if (n > left()) {
      return fail(err,
                  "%s: string at offset %zu has length %llu, past the end of the file (%zu left)",
                  what, at, static_cast<unsigned long long>(n), left());
    }
    *s = std::string_view(reinterpret_cast<const char*>(p + pos), static_cast<size_t>(n));
    pos += static_cast<size_t>(n);
    return true;
  }
};

// Reads an array body (element type, count, elements). depth 0 may hold arrays; depth 1 not.
bool read_array(Reader& r, const std::string& key, int depth, GgufArray* a) {
  size_t at = r.pos;
  uint32_t et;
  uint64_t n;
  if (!r.u32(&et, "array element type") || !r.u64(&n, "array count")) return false;
  if (et >= GGUF_TYPE_COUNT) {
    return fail(r.err, "key '%s': array at offset %zu has unknown element type %u", key.c_str(), at,
                et);
  }
  if (et == GGUF_TYPE_ARRAY && depth > 0) {
    return fail(r.err, "key '%s': arrays nested more than one level at offset %zu", key.c_str(),
                at);
  }
  // Smallest encoding of one element: a string is at least its 8-byte length, an inner
  // array at least its 12-byte header.
  size_t min_elem = et == GGUF_TYPE_STRING ? 8 : et == GGUF_TYPE_ARRAY ? 12 : scalar_size(et);
  if (n > std::numeric_limits<uint64_t>::max() / min_elem) {
    return fail(r.err, "key '%s': array count %llu at offset %zu overflows", key.c_str(),
                static_cast<unsigned long long>(n), at);
  }
  if (n * min_elem > r.left()) {
    return fail(r.err,
                "key '%s': array count %llu at offset %zu is past the end of the file (%zu left)",
                key.c_str(), static_cast<unsigned long long>(n), at, r.left());
  }
  a->type = static_cast<GgufType>(et);
  a->n = n;
  if (et == GGUF_TYPE_STRING) {
    a->strs.reserve(static_cast<size_t>(n));  // at most 2x the bytes left
    for (uint64_t i = 0; i < n; i++) {
      std::string_view s;
      if (!r.str(&s, "array string")) return false;
      a->strs.push_back(s);
    }
  } else if (et == GGUF_TYPE_ARRAY) {
    // Grown as parsed: a forged count must not reserve memory the file does not back.
    for (uint64_t i = 0; i < n; i++) {
      a->arrs.emplace_back();
      if (!read_array(r, key, depth + 1, &a->arrs.back())) return false;
    }
  } else {
    a->data = r.p + r.pos;
    if (et == GGUF_TYPE_BOOL) {
      for (uint64_t i = 0; i < n; i++) {
        if (a->data[i] > 1) {
          return fail(r.err, "key '%s': array bool %llu at offset %llu is %u, not 0 or 1",
                      key.c_str(), static_cast<unsigned long long>(i),
                      static_cast<unsigned long long>(r.pos + i), a->data[i]);
        }
      }
    }
    r.pos += static_cast<size_t>(n * min_elem);
  }
  return true;
}

bool read_kv(Reader& r, GgufKV* kv) {
  size_t at = r.pos;
  if (!r.str(&kv->key, "metadata key")) return false;
  std::string key = show(kv->key);
  if (kv->key.empty() || kv->key.size() > kGgufMaxKey) {
    return fail(r.err, "metadata key at offset %zu has length %zu (must be 1..%zu)", at,
                kv->key.size(), kGgufMaxKey);
  }
  uint32_t t;
  if (!r.u32(&t, "metadata value type")) return false;
  if (t >= GGUF_TYPE_COUNT) {
    return fail(r.err, "key '%s' at offset %zu has unknown value type %u", key.c_str(), at, t);
  }
  kv->type = static_cast<GgufType>(t);
  if (t == GGUF_TYPE_STRING) return r.str(&kv->str, "metadata string value");
  if (t == GGUF_TYPE_ARRAY) return read_array(r, key, 0, &kv->arr);
  size_t n = scalar_size(t);
  if (!r.need(n, "metadata value")) return false;
  decode_scalar(t, r.p + r.pos, &kv->u64, &kv->i64, &kv->f64);
  if (t == GGUF_TYPE_BOOL && kv->u64 > 1) {
    return fail(r.err, "key '%s': bool at offset %zu is %llu, not 0 or 1", key.c_str(), r.pos,
                static_cast<unsigned long long>(kv->u64));
  }
  r.pos += n;
  return true;
}

bool read_tensor_info(Reader& r, GgufTensor* t) {
  size_t at = r.pos;
  if (!r.str(&t->name, "tensor name")) return false;
  std::string name = show(t->name);
  if (t->name.empty() || t->name.size() > kGgufMaxTensorName) {
    return fail(r.err, "tensor name at offset %zu has length %zu (must be 1..%zu)", at,
                t->name.size(), kGgufMaxTensorName);
  }
  if (!r.u32(&t->n_dims, "tensor n_dims")) return false;
  if (t->n_dims == 0 || t->n_dims > kGgufMaxDims) {
    return fail(r.err, "tensor '%s' has n_dims %u (must be 1..%u)", name.c_str(), t->n_dims,
                kGgufMaxDims);
  }
  int64_t n_el = 1;
  for (uint32_t d = 0; d < t->n_dims; d++) {
    uint64_t v;
    if (!r.u64(&v, "tensor dimension")) return false;
    if (v == 0 || v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return fail(r.err, "tensor '%s' dim %u is %lld (must be positive)", name.c_str(), d,
                  static_cast<long long>(v));
    }
    t->ne[d] = static_cast<int64_t>(v);
    if (n_el > std::numeric_limits<int64_t>::max() / t->ne[d]) {
      return fail(r.err, "tensor '%s' element count overflows (dim %u is %lld)", name.c_str(), d,
                  static_cast<long long>(v));
    }
    n_el *= t->ne[d];
  }
  t->n_elements = n_el;
  t->n_rows = n_el / t->ne[0];
  uint32_t type;
  if (!r.u32(&type, "tensor type")) return false;
  if (type > static_cast<uint32_t>(std::numeric_limits<int>::max()) ||
      !ggml_type_info(static_cast<int>(type))) {
    return fail(r.err, "tensor '%s' has unknown ggml type %u", name.c_str(), type);
  }
  t->type = static_cast<int>(type);
  if (t->ne[0] % ggml_blck_size(t->type) != 0) {
    return fail(r.err, "tensor '%s': row length %lld is not a multiple of the %s block size %lld",
                name.c_str(), static_cast<long long>(t->ne[0]), ggml_type_name(t->type),
                static_cast<long long>(ggml_blck_size(t->type)));
  }
  if (!ggml_row_bytes(t->type, t->ne[0], &t->row_bytes)) {
    return fail(r.err, "tensor '%s' byte size overflows", name.c_str());
  }
  if (t->row_bytes != 0 &&
      static_cast<uint64_t>(t->n_rows) > std::numeric_limits<uint64_t>::max() / t->row_bytes) {
    return fail(r.err, "tensor '%s' byte size overflows", name.c_str());
  }
  t->nbytes = t->row_bytes * static_cast<uint64_t>(t->n_rows);
  return r.u64(&t->offset, "tensor offset");
}

bool parse(GgufFile* f, std::string* err) {
  Reader r{f->base, f->size, 0, err};
  uint32_t magic;
  if (!r.u32(&magic, "magic")) return false;
  if (memcmp(f->base, "GGUF", 4) != 0) {
    return fail(err, "bad magic 0x%08x (not a GGUF file)", magic);
  }
  if (!r.u32(&f->version, "version")) return false;
  if (f->version != 2 && f->version != 3) {
    bool swapped = f->version == 0x02000000u || f->version == 0x03000000u;
    return fail(err, "unsupported GGUF version %u%s (need 2 or 3)", f->version,
                swapped ? " (big-endian file)" : "");
  }
  uint64_t n_tensors, n_kv;
  if (!r.u64(&n_tensors, "tensor count") || !r.u64(&n_kv, "kv count")) return false;
  // Each KV takes at least 13 bytes (key length, type, 1-byte value) and each tensor info
  // at least 32 (name length, n_dims, one dim, type, offset): refuse counts the file cannot
  // hold before allocating anything for them.
  if (n_kv > r.left() / 13) {
    return fail(err, "kv count %llu is more than the file can hold (%zu bytes left)",
                static_cast<unsigned long long>(n_kv), r.left());
  }
  if (n_tensors > (r.left() - n_kv * 13) / 32) {
    return fail(err, "tensor count %llu is more than the file can hold (%zu bytes left)",
                static_cast<unsigned long long>(n_tensors), r.left());
  }

  // Grown as parsed (a GgufKV is much larger than its smallest encoding).
  for (size_t i = 0; i < n_kv; i++) {
    f->kvs.emplace_back();
    if (!read_kv(r, &f->kvs[i])) return false;
    if (!f->kv_index.emplace(f->kvs[i].key, i).second) {
      return fail(err, "duplicate metadata key '%s'", show(f->kvs[i].key).c_str());
    }
  }

  if (const GgufKV* kv = gguf_find(*f, "general.alignment")) {
    if (kv->type != GGUF_TYPE_UINT32) {
      return fail(err, "key 'general.alignment' has type %s, expected uint32",
                  gguf_type_name(kv->type));
    }
    if (kv->u64 == 0 || (kv->u64 & (kv->u64 - 1)) != 0) {
      return fail(err, "general.alignment %llu is not a power of two",
                  static_cast<unsigned long long>(kv->u64));
    }
    f->alignment = static_cast<uint32_t>(kv->u64);
  }

  for (size_t i = 0; i < n_tensors; i++) {
    f->tensors.emplace_back();
    if (!read_tensor_info(r, &f->tensors[i])) return false;
    if (!f->tensor_index.emplace(f->tensors[i].name, i).second) {
      return fail(err, "duplicate tensor name '%s'", show(f->tensors[i].name).c_str());
    }
  }

  // The data section starts at the next multiple of the alignment. A file without tensors
  // may end right after the tensor infos.
  uint64_t a = f->alignment;
  uint64_t start = (static_cast<uint64_t>(r.pos) + a - 1) / a * a;
  if (f->tensors.empty()) {
    f->data_offset = start < f->size ? start : f->size;
    return true;
  }
  if (start > f->size) {
    return fail(err, "data section at offset %llu is past the end of the file (%zu bytes)",
                static_cast<unsigned long long>(start), f->size);
  }
  f->data_offset = start;
  uint64_t data_size = f->size - start;
  for (GgufTensor& t : f->tensors) {
    std::string name = show(t.name);
    if (t.offset % a != 0) {
      return fail(err, "tensor '%s' offset %llu is not a multiple of the alignment %u",
                  name.c_str(), static_cast<unsigned long long>(t.offset), f->alignment);
    }
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      return fail(err,
                  "tensor '%s' data (offset %llu, %llu bytes) is past the end of the file "
                  "(data section holds %llu bytes)",
                  name.c_str(), static_cast<unsigned long long>(t.offset),
                  static_cast<unsigned long long>(t.nbytes),
                  static_cast<unsigned long long>(data_size));
    }
    t.data = f->base + start + t.offset;
  }
  // Overlapping tensors mean a corrupt or malicious file.
  std::vector<const GgufTensor*> by_offset;
  for (const GgufTensor& t : f->tensors) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensor* x, const GgufTensor* y) { return x->offset < y->offset; });
  for (size_t i = 1; i < by_offset.size(); i++) {
    const GgufTensor* prev = by_offset[i - 1];
    const GgufTensor* cur = by_offset[i];
    if (prev->offset + prev->nbytes > cur->offset) {
      return fail(err, "tensor '%s' data overlaps tensor '%s' (offsets %llu and %llu)",
                  show(cur->name).c_str(), show(prev->name).c_str(),
                  static_cast<unsigned long long>(cur->offset),
                  static_cast<unsigned long long>(prev->offset));
    }
  }
  return true;
}

bool open_bytes(const uint8_t* data, size_t size, GgufFile* out, std::string* err) {
  out->base = data;
  out->size = size;
  bool ok = false;
  try {
    ok = parse(out, err);
  } catch (const std::exception& e) {
    ok = fail(err, "out of memory reading GGUF metadata (%s)", e.what());
  }
  return ok;
}

// Prefixes *err with where the failure came from.
void prefix_error(std::string* err, const char* source) {
  if (err) *err = std::string(source) + ": " + *err;
}

const GgufKV* find_for_get(const GgufFile& f, const char* key, std::string* err) {
  const GgufKV* kv = gguf_find(f, key);
  if (!kv) fail(err, "key '%s' not found", key ? key : "(null)");
  return kv;
}

// Any integer KV as a signed or unsigned 64-bit value, for range-checked narrowing.
bool get_int(const GgufFile& f, const char* key, bool* neg, uint64_t* mag, std::string* err) {
  const GgufKV* kv = find_for_get(f, key, err);
  if (!kv) return false;
  if (!is_int_type(kv->type)) {
    return fail(err, "key '%s' has type %s, expected an integer", key, gguf_type_name(kv->type));
  }
  if (is_signed_type(kv->type)) {
    *neg = kv->i64 < 0;
    *mag = *neg ? 0 - static_cast<uint64_t>(kv->i64) : static_cast<uint64_t>(kv->i64);
  } else {
    *neg = false;
    *mag = kv->u64;
  }
  return true;
}

bool out_of_range(const char* key, bool neg, uint64_t mag, const char* want, std::string* err) {
  return fail(err, "key '%s' value %s%llu does not fit %s", key, neg ? "-" : "",
              static_cast<unsigned long long>(mag), want);
}

}  // namespace

GgufFile::~GgufFile() {
  gguf_close(this);
}

GgufFile::GgufFile(GgufFile&& o) noexcept {
  *this = std::move(o);
}

GgufFile& GgufFile::operator=(GgufFile&& o) noexcept {
  if (this == &o) return *this;
  gguf_close(this);
  source = std::move(o.source);
  base = o.base;
  size = o.size;
  map = o.map;
  map_size = o.map_size;
  version = o.version;
  alignment = o.alignment;
  data_offset = o.data_offset;
  kvs = std::move(o.kvs);
  tensors = std::move(o.tensors);
  kv_index = std::move(o.kv_index);
  tensor_index = std::move(o.tensor_index);
  o.map = nullptr;
  o.map_size = 0;
  gguf_close(&o);
  return *this;
}

void gguf_close(GgufFile* f) {
  if (!f) return;
  if (f->map) munmap(f->map, f->map_size);
  f->map = nullptr;
  f->map_size = 0;
  f->base = nullptr;
  f->size = 0;
  f->source.clear();
  f->version = 0;
  f->alignment = kGgufDefaultAlignment;
  f->data_offset = 0;
  f->kvs.clear();
  f->tensors.clear();
  f->kv_index.clear();
  f->tensor_index.clear();
}

bool gguf_open_memory(const void* data, size_t size, GgufFile* out, std::string* err) {
  if (!out) return fail(err, "gguf_open_memory: null output");
  gguf_close(out);
  if (!data && size > 0) return fail(err, "<memory>: null buffer");
  static const uint8_t kEmpty[1] = {0};
  bool ok = open_bytes(data ? static_cast<const uint8_t*>(data) : kEmpty, size, out, err);
  if (!ok) {
    prefix_error(err, "<memory>");
    gguf_close(out);
    return false;
  }
  out->source = "<memory>";
  return true;
}

void gguf_release(const GgufFile& f, const GgufTensor& t) {
  if (!f.map || !t.data || t.nbytes == 0) return;
  const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  const uintptr_t lo = ((uintptr_t)t.data + page - 1) / page * page;
  const uintptr_t hi = ((uintptr_t)t.data + t.nbytes) / page * page;
  if (hi > lo) madvise((void*)lo, hi - lo, MADV_DONTNEED);  // a hint: failure changes nothing
}

bool gguf_open(const char* path, GgufFile* out, std::string* err) {
  if (!out) return fail(err, "gguf_open: null output");
  gguf_close(out);
  if (!path) return fail(err, "gguf_open: null path");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(err, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return fail(err, "%s: cannot stat: %s", path, strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return fail(err, "%s: not a regular file", path);
  }
  if (st.st_size <= 0 || static_cast<uint64_t>(st.st_size) > std::numeric_limits<size_t>::max()) {
    close(fd);
    return fail(err, "%s: truncated file: size %lld", path, static_cast<long long>(st.st_size));
  }
  size_t size = static_cast<size_t>(st.st_size);
  void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int e = errno;
  close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED) return fail(err, "%s: mmap failed: %s", path, strerror(e));
  out->map = map;
  out->map_size = size;
  if (!open_bytes(static_cast<const uint8_t*>(map), size, out, err)) {
    prefix_error(err, path);
    gguf_close(out);
    return false;
  }
  out->source = path;
  return true;
}

const GgufKV* gguf_find(const GgufFile& f, const char* key) {
  if (!key) return nullptr;
  auto it = f.kv_index.find(std::string_view(key));
  return it == f.kv_index.end() ? nullptr : &f.kvs[it->second];
}

const GgufTensor* gguf_tensor(const GgufFile& f, const char* name) {
  if (!name) return nullptr;
  auto it = f.tensor_index.find(std::string_view(name));
  return it == f.tensor_index.end() ? nullptr : &f.tensors[it->second];
}

bool gguf_get_u32(const GgufFile& f, const char* key, uint32_t* out, std::string* err) {
  bool neg = false;
  uint64_t mag = 0;
  if (!get_int(f, key, &neg, &mag, err)) return false;
  if (neg || mag > std::numeric_limits<uint32_t>::max()) {
    return out_of_range(key, neg, mag, "uint32", err);
  }
  *out = static_cast<uint32_t>(mag);
  return true;
}

bool gguf_get_i32(const GgufFile& f, const char* key, int32_t* out, std::string* err) {
  bool neg = false;
  uint64_t mag = 0;
  if (!get_int(f, key, &neg, &mag, err)) return false;
  if (mag > (neg ? 2147483648ull : 2147483647ull)) return out_of_range(key, neg, mag, "int32", err);
  *out = neg ? static_cast<int32_t>(0 - mag) : static_cast<int32_t>(mag);
  return true;
}

bool gguf_get_u64(const GgufFile& f, const char* key, uint64_t* out, std::string* err) {
  bool neg = false;
  uint64_t mag = 0;
  if (!get_int(f, key, &neg, &mag, err)) return false;
  if (neg) return out_of_range(key, neg, mag, "uint64", err);
  *out = mag;
  return true;
}

bool gguf_get_i64(const GgufFile& f, const char* key, int64_t* out, std::string* err) {
  bool neg = false;
  uint64_t mag = 0;
  if (!get_int(f, key, &neg, &mag, err)) return false;
  if (mag > (neg ? 9223372036854775808ull : 9223372036854775807ull)) {
    return out_of_range(key, neg, mag, "int64", err);
  }
  *out = neg ? static_cast<int64_t>(0 - mag) : static_cast<int64_t>(mag);
  return true;
}

bool gguf_get_f32(const GgufFile& f, const char* key, float* out, std::string* err) {
  const GgufKV* kv = find_for_get(f, key, err);
  if (!kv) return false;
  if (kv->type != GGUF_TYPE_FLOAT32 && kv->type != GGUF_TYPE_FLOAT64) {
    return fail(err, "key '%s' has type %s, expected a float", key, gguf_type_name(kv->type));
  }
  *out = static_cast<float>(kv->f64);
  return true;
}

bool gguf_get_bool(const GgufFile& f, const char* key, bool* out, std::string* err) {
  const GgufKV* kv = find_for_get(f, key, err);
  if (!kv) return false;
  if (kv->type != GGUF_TYPE_BOOL) {
    return fail(err, "key '%s' has type %s, expected bool", key, gguf_type_name(kv->type));
  }
  *out = kv->u64 != 0;
  return true;
}

bool gguf_get_str(const GgufFile& f, const char* key, std::string_view* out, std::string* err) {
  const GgufKV* kv = find_for_get(f, key, err);
  if (!kv) return false;
  if (kv->type != GGUF_TYPE_STRING) {
    return fail(err, "key '%s' has type %s, expected string", key, gguf_type_name(kv->type));
  }
  *out = kv->str;
  return true;
}

bool gguf_get_arr(const GgufFile& f, const char* key, GgufType elem_type, const GgufArray** out,
                  std::string* err) {
  const GgufKV* kv = find_for_get(f, key, err);
  if (!kv) return false;
  if (kv->type != GGUF_TYPE_ARRAY) {
    return fail(err, "key '%s' has type %s, expected array", key, gguf_type_name(kv->type));
  }
  if (elem_type != GGUF_TYPE_COUNT && kv->arr.type != elem_type) {
    return fail(err, "key '%s' is an array of %s, expected an array of %s", key,
                gguf_type_name(kv->arr.type), gguf_type_name(elem_type));
  }
  *out = &kv->arr;
  return true;
}

bool gguf_arr_get_i64(const GgufArray& a, uint64_t i, int64_t* out) {
  if (i >= a.n || !a.data || !is_int_type(a.type)) return false;
  uint64_t u = 0;
  int64_t s = 0;
  double d = 0;
  decode_scalar(a.type, a.data + i * scalar_size(a.type), &u, &s, &d);
  if (is_signed_type(a.type)) {
    *out = s;
  } else {
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    *out = static_cast<int64_t>(u);
  }
  return true;
}

bool gguf_arr_get_f32(const GgufArray& a, uint64_t i, float* out) {
  if (i >= a.n || !a.data) return false;
  if (a.type != GGUF_TYPE_FLOAT32 && a.type != GGUF_TYPE_FLOAT64) return false;
  uint64_t u = 0;
  int64_t s = 0;
  double d = 0;
  decode_scalar(a.type, a.data + i * scalar_size(a.type), &u, &s, &d);
  *out = static_cast<float>(d);
  return true;
}

const char* gguf_type_name(uint32_t t) {
  static const char* const kNames[GGUF_TYPE_COUNT] = {
      "uint8", "int8",   "uint16", "int16",  "uint32", "int32",  "float32",
      "bool",  "string", "array",  "uint64", "int64",  "float64"};
  return t < GGUF_TYPE_COUNT ? kNames[t] : "unknown";
}

}  // namespace amskv
