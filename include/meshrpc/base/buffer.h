// Reference-counted byte storage for payloads: Block, Slice and Buffer.
//
//   Block   a heap block of bytes with an atomic reference count. Blocks of the default
//           size come from a small per-thread cache, so steady-state traffic allocates none.
//   Slice   a shared, immutable view of a range of one Block. Copying a Slice copies no bytes.
//   Buffer  a chain of Slices (a message, a read buffer, a batch of frames to write). Cutting
//           a prefix off, appending another Buffer, or handing slices to writev copies no bytes.
//
// A Buffer also owns the unused tail of the last block it allocated, so many small appends
// (frame headers) land contiguously in one block, and a read can go straight into it
// (prepare / commit, like an Asio dynamic buffer).
//
// Threading: a Buffer is a value, used by one thread at a time. Slices may be shared across
// threads freely: the bytes they view are never written again once committed.
#pragma once

#include <atomic>
#include <boost/container/small_vector.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace meshrpc {

class Block {
 public:
  // The size of pooled blocks. 16 KiB: large enough that one read takes many small frames,
  // small enough that an idle connection holding one costs little.
  static constexpr size_t kDefaultBytes = 16 * 1024;
  // Blocks kept per thread for reuse: 64 x 16 KiB = 1 MiB per io thread at most.
  static constexpr size_t kCachedPerThread = 64;

  // A block with room for at least `capacity` bytes and one reference.
  static Block* allocate(size_t capacity);

  void ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) release();
  }
  uint32_t ref_count() const { return refs_.load(std::memory_order_acquire); }

  char* data() { return reinterpret_cast<char*>(this + 1); }
  const char* data() const { return reinterpret_cast<const char*>(this + 1); }
  size_t capacity() const { return capacity_; }

  // Blocks currently allocated by this process (live, not cached): for leak tests and stats.
  static int64_t live_count();

 private:
  explicit Block(size_t capacity) : capacity_(capacity) {}
  void release();

  std::atomic<uint32_t> refs_{1};
  uint32_t capacity_;
  // Bytes follow the header in the same allocation.
};

class Slice {
 public:
  Slice() = default;
  // Takes over one reference the caller holds on `block`.
  Slice(Block* block, const char* data, size_t size) : block_(block), data_(data), size_(size) {}
  // A new block holding a copy of `bytes`.
  static Slice copy_of(std::string_view bytes);

  Slice(const Slice& other) : block_(other.block_), data_(other.data_), size_(other.size_) {
    if (block_) block_->ref();
  }
  Slice& operator=(const Slice& other) {
    Slice copy(other);
    swap(copy);
    return *this;
  }
  Slice(Slice&& other) noexcept : block_(other.block_), data_(other.data_), size_(other.size_) {
    other.block_ = nullptr;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  Slice& operator=(Slice&& other) noexcept {
    Slice moved(std::move(other));
    swap(moved);
    return *this;
  }
  ~Slice() {
    if (block_) block_->unref();
  }

  void swap(Slice& other) noexcept {
    std::swap(block_, other.block_);
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
  }

  const char* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::string_view view() const { return {data_, size_}; }
  const Block* block() const { return block_; }

  // A view of bytes [offset, offset + size) of this slice, sharing the block.
  Slice sub(size_t offset, size_t size) const;

 private:
  friend class Buffer;
  Block* block_ = nullptr;
  const char* data_ = nullptr;
  size_t size_ = 0;
};

class Buffer {
 public:
  using SliceVector = boost::container::small_vector<Slice, 4>;

  Buffer() = default;
  explicit Buffer(Slice slice) { append(std::move(slice)); }
  // A copy of `bytes` in a new block.
  static Buffer copy_of(std::string_view bytes);

  // Copies share the slices (no byte copy) but not the writable tail.
  Buffer(const Buffer& other) : slices_(other.slices_), size_(other.size_) {}
  Buffer& operator=(const Buffer& other);
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  ~Buffer();

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::span<const Slice> slices() const { return {slices_.data(), slices_.size()}; }

  void append(Slice slice);
  void append(const Buffer& other);
  void append(Buffer&& other);
  // Copies `bytes` into the writable tail (allocating a block when it is too small).
  void append_copy(std::string_view bytes);
  void append_copy(const void* data, size_t size) {
    append_copy(std::string_view(static_cast<const char*>(data), size));
  }

  // Writable space of at least `min_bytes` at the end, contiguous; valid until the next
  // non-const call. Bytes written there become part of the buffer by commit(n).
  std::span<char> prepare(size_t min_bytes);
  void commit(size_t bytes);

  // Drops the first `bytes` bytes (at most size()).
  void consume(size_t bytes);
  // Removes and returns the first `bytes` bytes (at most size()), sharing blocks.
  Buffer cut_front(size_t bytes);
  // Copies the first `size` bytes (size <= size()) into `out`.
  void copy_front(char* out, size_t size) const;
  // The byte at `offset` (< size()).
  char at(size_t offset) const;

  // A contiguous view of the first `size` bytes (size <= size()): points into the first
  // slice when it holds them all, else the bytes are copied to `scratch` (>= size bytes).
  const char* peek(size_t size, char* scratch) const;
  // The whole buffer as one contiguous range; joins the slices into one if there are several.
  std::string_view flatten();

  std::string to_string() const;
  void clear();

  // True if both hold the same bytes, however sliced.
  friend bool operator==(const Buffer& a, const Buffer& b);

 private:
  void release_tail();

  SliceVector slices_;
  size_t size_ = 0;
  // A block this buffer alone may write into, from byte tail_used_ on (one reference held).
  // Invariant: no Slice anywhere views bytes of tail_ at or past tail_used_, so writing there
  // never changes bytes someone else can see.
  Block* tail_ = nullptr;
  size_t tail_used_ = 0;
};

}  // namespace meshrpc
