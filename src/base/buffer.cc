#include "meshrpc/base/buffer.h"

#include <algorithm>
#include <cassert>
#include <new>
#include <vector>

// Pooling hides use-after-free from AddressSanitizer, so sanitizer builds allocate and free
// every block directly.
#if defined(__SANITIZE_ADDRESS__)
#define MESHRPC_BLOCK_POOL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MESHRPC_BLOCK_POOL 0
#endif
#endif
#ifndef MESHRPC_BLOCK_POOL
#define MESHRPC_BLOCK_POOL 1
#endif

namespace meshrpc {
namespace {

std::atomic<int64_t> live_blocks{0};

// Set when this thread's cache is destroyed. Blocks released after that, during thread exit (by
// a thread_local or static Buffer destroyed later), go straight back to the heap. A constinit
// bool, so it stays usable after every non-trivial thread_local is gone.
constinit thread_local bool block_cache_destroyed = false;

// Free default-size blocks of one thread. Blocks freed on another thread than the one that
// allocated them land in the freeing thread's cache; that is fine, they are interchangeable.
class BlockCache {
 public:
  ~BlockCache() {
    block_cache_destroyed = true;
    for (void* memory : free_) ::operator delete(memory);
  }
  void* take() {
    if (free_.empty()) return nullptr;
    void* memory = free_.back();
    free_.pop_back();
    return memory;
  }
  bool give(void* memory) {
    if (free_.size() >= Block::kCachedPerThread) return false;
    free_.push_back(memory);
    return true;
  }

 private:
  std::vector<void*> free_;
};

// This thread's cache, or null once thread exit has destroyed it.
BlockCache* block_cache() {
  if (block_cache_destroyed) return nullptr;
  thread_local BlockCache cache;
  return &cache;
}

}  // namespace

Block* Block::allocate(size_t capacity) {
  capacity = std::max(capacity, kDefaultBytes);
  void* memory = nullptr;
  if (MESHRPC_BLOCK_POOL && capacity == kDefaultBytes) {
    if (BlockCache* cache = block_cache()) memory = cache->take();
  }
  if (memory == nullptr) memory = ::operator new(sizeof(Block) + capacity);
  live_blocks.fetch_add(1, std::memory_order_relaxed);
  return new (memory) Block(capacity);
}

void Block::release() {
  live_blocks.fetch_sub(1, std::memory_order_relaxed);
  const bool poolable = MESHRPC_BLOCK_POOL && capacity_ == kDefaultBytes;
  this->~Block();
  BlockCache* cache = poolable ? block_cache() : nullptr;
  if (cache == nullptr || !cache->give(this)) ::operator delete(this);
}

int64_t Block::live_count() { return live_blocks.load(std::memory_order_relaxed); }

Slice Slice::copy_of(std::string_view bytes) {
  Block* block = Block::allocate(bytes.size());
  if (!bytes.empty()) std::memcpy(block->data(), bytes.data(), bytes.size());
  return Slice(block, block->data(), bytes.size());
}

Slice Slice::sub(size_t offset, size_t size) const {
  assert(offset + size <= size_);
  if (block_) block_->ref();
  return Slice(block_, data_ + offset, size);
}

Buffer Buffer::copy_of(std::string_view bytes) {
  Buffer out;
  out.append_copy(bytes);
  return out;
}

Buffer& Buffer::operator=(const Buffer& other) {
  if (this != &other) {
    release_tail();
    slices_ = other.slices_;
    size_ = other.size_;
  }
  return *this;
}

Buffer::Buffer(Buffer&& other) noexcept
    : slices_(std::move(other.slices_)),
      size_(other.size_),
      tail_(other.tail_),
      tail_used_(other.tail_used_) {
  other.slices_.clear();
  other.size_ = 0;
  other.tail_ = nullptr;
  other.tail_used_ = 0;
}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    release_tail();
    slices_ = std::move(other.slices_);
    size_ = other.size_;
    tail_ = other.tail_;
    tail_used_ = other.tail_used_;
    other.slices_.clear();
    other.size_ = 0;
    other.tail_ = nullptr;
    other.tail_used_ = 0;
  }
  return *this;
}

Buffer::~Buffer() { release_tail(); }

void Buffer::release_tail() {
  if (tail_) tail_->unref();
  tail_ = nullptr;
  tail_used_ = 0;
}

void Buffer::append(Slice slice) {
  if (slice.empty()) return;
  size_ += slice.size();
  slices_.push_back(std::move(slice));
}

void Buffer::append(const Buffer& other) {
  // By index, with room reserved first: `other` may be *this, whose slice vector would
  // otherwise reallocate under a range-for that is still reading it.
  const size_t count = other.slices_.size();
  slices_.reserve(slices_.size() + count);
  for (size_t i = 0; i < count; ++i) append(other.slices_[i]);
}

void Buffer::append(Buffer&& other) {
  if (empty() && !tail_) {
    *this = std::move(other);
    return;
  }
  for (Slice& slice : other.slices_) append(std::move(slice));
  other.clear();
}

void Buffer::append_copy(std::string_view bytes) {
  if (bytes.empty()) return;
  std::span<char> space = prepare(bytes.size());
  std::memcpy(space.data(), bytes.data(), bytes.size());
  commit(bytes.size());
}

std::span<char> Buffer::prepare(size_t min_bytes) {
  if (tail_ == nullptr || tail_->capacity() - tail_used_ < min_bytes) {
    release_tail();
    tail_ = Block::allocate(min_bytes);
  }
  return {tail_->data() + tail_used_, tail_->capacity() - tail_used_};
}

void Buffer::commit(size_t bytes) {
  if (bytes == 0) return;
  assert(tail_ != nullptr && tail_used_ + bytes <= tail_->capacity());
  const char* start = tail_->data() + tail_used_;
  tail_used_ += bytes;
  size_ += bytes;
  // Bytes written right after the last slice of the same block extend that slice, so a run
  // of small appends stays one slice (one iovec).
  if (!slices_.empty()) {
    Slice& last = slices_.back();
    if (last.block_ == tail_ && last.data_ + last.size_ == start) {
      last.size_ += bytes;
      return;
    }
  }
  tail_->ref();
  slices_.push_back(Slice(tail_, start, bytes));
}

void Buffer::consume(size_t bytes) {
  bytes = std::min(bytes, size_);
  size_ -= bytes;
  size_t drop = 0;
  while (bytes > 0) {
    Slice& front = slices_[drop];
    if (bytes < front.size_) {
      front.data_ += bytes;
      front.size_ -= bytes;
      break;
    }
    bytes -= front.size_;
    ++drop;
  }
  slices_.erase(slices_.begin(), slices_.begin() + static_cast<ptrdiff_t>(drop));
}

Buffer Buffer::cut_front(size_t bytes) {
  bytes = std::min(bytes, size_);
  Buffer out;
  if (bytes == size_ && tail_ == nullptr) {
    std::swap(out.slices_, slices_);
    std::swap(out.size_, size_);
    return out;
  }
  size_t taken = 0;
  size_t whole = 0;
  while (taken < bytes && slices_[whole].size_ <= bytes - taken) {
    taken += slices_[whole].size_;
    out.slices_.push_back(std::move(slices_[whole]));
    ++whole;
  }
  slices_.erase(slices_.begin(), slices_.begin() + static_cast<ptrdiff_t>(whole));
  if (taken < bytes) {
    Slice& front = slices_.front();
    const size_t part = bytes - taken;
    out.slices_.push_back(front.sub(0, part));
    front.data_ += part;
    front.size_ -= part;
  }
  out.size_ = bytes;
  size_ -= bytes;
  return out;
}

void Buffer::copy_front(char* out, size_t size) const {
  assert(size <= size_);
  for (const Slice& slice : slices_) {
    if (size == 0) break;
    const size_t n = std::min(size, slice.size_);
    std::memcpy(out, slice.data_, n);
    out += n;
    size -= n;
  }
}

char Buffer::at(size_t offset) const {
  assert(offset < size_);
  for (const Slice& slice : slices_) {
    if (offset < slice.size_) return slice.data_[offset];
    offset -= slice.size_;
  }
  return 0;
}

const char* Buffer::peek(size_t size, char* scratch) const {
  assert(size <= size_);
  if (size == 0) return scratch;
  if (slices_.front().size_ >= size) return slices_.front().data_;
  copy_front(scratch, size);
  return scratch;
}

std::string_view Buffer::flatten() {
  if (slices_.empty()) return {};
  if (slices_.size() > 1) {
    Block* block = Block::allocate(size_);
    copy_front(block->data(), size_);
    slices_.clear();
    slices_.push_back(Slice(block, block->data(), size_));
  }
  return slices_.front().view();
}

std::string Buffer::to_string() const {
  std::string out(size_, '\0');
  copy_front(out.data(), size_);
  return out;
}

void Buffer::clear() {
  slices_.clear();
  size_ = 0;
  release_tail();
}

bool operator==(const Buffer& a, const Buffer& b) {
  return a.size() == b.size() && a.to_string() == b.to_string();
}

}  // namespace meshrpc
