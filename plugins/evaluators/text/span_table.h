// plugins/evaluators/text/span_table.h — an internal hash table keyed by
// short spans of integers (n-grams of token ids or of code points), for the
// BLEU and chrF counting loops. Not part of the library's API.
//
// Keys are compared element by element, so distinct n-grams never merge
// whatever the hash does; the hash only spreads them. Keys are not copied:
// the caller keeps the spans' storage alive and unchanged until Clear().
// The table is reused segment after segment, so Clear() costs O(entries),
// not O(capacity), and nothing is allocated once it has grown.
//
//   SpanTable<uint32_t> table;
//   uint64_t h = SpanTable<uint32_t>::kSeed;
//   for (int n = 1; n <= max_n; ++n) {
//     h = SpanTable<uint32_t>::Step(h, ids[i + n - 1]);
//     table.FindOrInsert(&ids[i], n, h)->count_a++;
//   }
//
// Thread-safety: none; one table per thread.
#ifndef LLMSYS_PLUGINS_EVALUATORS_TEXT_SPAN_TABLE_H_
#define LLMSYS_PLUGINS_EVALUATORS_TEXT_SPAN_TABLE_H_

#include <cstdint>
#include <cstring>
#include <vector>

namespace llmsys::text::internal {

template <typename T>
class SpanTable {
 public:
  static_assert(sizeof(T) == 4, "spans of 32-bit values");

  struct Entry {
    const T* data;
    uint32_t len;
    uint32_t slot;   // where this entry sits in slots_
    uint64_t hash;   // the Step() chain over the span, before Mix()
    uint32_t stamp;  // caller-defined marker (e.g. the reference last seen)
    uint32_t id;     // position in entries(): a dense id for the span
    int64_t count_a;
    int64_t count_b;
    int64_t count_c;
  };

  static constexpr uint64_t kSeed = 0x243F6A8885A308D3ull;

  // Extends the hash of a span by one more element.
  static uint64_t Step(uint64_t h, T value) {
    return (h ^ static_cast<uint64_t>(static_cast<uint32_t>(value))) *
               0x9E3779B97F4A7C15ull +
           0x632BE59BD9B4E019ull;
  }

  SpanTable() { slots_.assign(64, kEmpty); }

  void Clear() {
    for (const Entry& e : entries_) slots_[e.slot] = kEmpty;
    entries_.clear();
  }

  std::vector<Entry>& entries() { return entries_; }

  // The entry for span (data, len) whose Step() chain from kSeed is `hash`,
  // or null.
  Entry* Find(const T* data, uint32_t len, uint64_t hash) {
    const size_t mask = slots_.size() - 1;
    for (size_t s = Mix(hash) & mask;; s = (s + 1) & mask) {
      const uint32_t index = slots_[s];
      if (index == kEmpty) return nullptr;
      Entry& e = entries_[index];
      if (Same(e, data, len, hash)) return &e;
    }
  }

  // The entry for the span, inserted with zero counts and stamp when absent.
  Entry* FindOrInsert(const T* data, uint32_t len, uint64_t hash) {
    if ((entries_.size() + 1) * 2 > slots_.size()) Grow();
    const size_t mask = slots_.size() - 1;
    for (size_t s = Mix(hash) & mask;; s = (s + 1) & mask) {
      const uint32_t index = slots_[s];
      if (index == kEmpty) {
        const auto id = static_cast<uint32_t>(entries_.size());
        slots_[s] = id;
        entries_.push_back(
            Entry{data, len, static_cast<uint32_t>(s), hash, 0, id, 0, 0, 0});
        return &entries_.back();
      }
      Entry& e = entries_[index];
      if (Same(e, data, len, hash)) return &e;
    }
  }

 private:
  static constexpr uint32_t kEmpty = 0xFFFFFFFFu;

  static uint64_t Mix(uint64_t h) {
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 33;
    return h;
  }

  static bool Same(const Entry& e, const T* data, uint32_t len, uint64_t hash) {
    return e.hash == hash && e.len == len &&
           (e.data == data || std::memcmp(e.data, data, len * sizeof(T)) == 0);
  }

  void Grow() {
    slots_.assign(slots_.size() * 2, kEmpty);
    const size_t mask = slots_.size() - 1;
    for (Entry& e : entries_) {
      size_t s = Mix(e.hash) & mask;
      while (slots_[s] != kEmpty) s = (s + 1) & mask;
      slots_[s] = e.id;
      e.slot = static_cast<uint32_t>(s);
    }
  }

  std::vector<Entry> entries_;
  std::vector<uint32_t> slots_;
};

}  // namespace llmsys::text::internal

#endif  // LLMSYS_PLUGINS_EVALUATORS_TEXT_SPAN_TABLE_H_
