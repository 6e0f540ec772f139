// Speed of the text metrics on one core: prints a table of seconds and
// segments per second for corpus BLEU (13a, intl), chrF and chrF++.
//
//   text_metrics_bench                    # 100000 synthetic segments
//   text_metrics_bench hyps.txt refs.txt  # one segment per line
//
// Not a test (no timing assertions); compare with sacreBLEU on the same
// files, e.g. python3 -c "import sacrebleu; ..." under `time`.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "plugins/evaluators/text/bleu.h"
#include "plugins/evaluators/text/chrf.h"

namespace {

using llmsys::text::Bleu;
using llmsys::text::BleuOptions;
using llmsys::text::Chrf;
using llmsys::text::ChrfOptions;

std::vector<std::string> ReadLines(const char* path) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path);
    std::exit(2);
  }
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

// News-like synthetic text: words from a small vocabulary with punctuation,
// numbers and an occasional non-ASCII word; the hypothesis is the reference
// with a few edits.
void Synthesize(size_t n, std::vector<std::string>* hyps,
                std::vector<std::string>* refs) {
  static const char* kWords[] = {
      "the",     "council", "approved", "a",       "budget", "of",     "$4.5",
      "million", "for",     "road",     "repairs", ",",      "ending", "weeks",
      "debate",  ".",       "Heavy",    "rain",    "forced", "café",   "2025",
      "runners", "shares",  "fell",     "7%",      "after",  "warned", "chip",
      "(",       ")",       "Straße",   "said",    "police", "museum", "on"};
  std::mt19937 rng(1234);
  const size_t vocab = sizeof(kWords) / sizeof(kWords[0]);
  for (size_t i = 0; i < n; ++i) {
    const size_t len = 10 + rng() % 25;
    std::vector<std::string> ref;
    for (size_t k = 0; k < len; ++k) ref.push_back(kWords[rng() % vocab]);
    std::vector<std::string> hyp = ref;
    for (int e = 0; e < 4; ++e) hyp[rng() % hyp.size()] = kWords[rng() % vocab];
    std::string h, r;
    for (size_t k = 0; k < ref.size(); ++k) r += (k ? " " : "") + ref[k];
    for (size_t k = 0; k < hyp.size(); ++k) h += (k ? " " : "") + hyp[k];
    hyps->push_back(h);
    refs->push_back(r);
  }
}

template <typename Fn>
double Seconds(Fn fn) {
  const auto start = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> hyps, refs;
  if (argc == 3) {
    hyps = ReadLines(argv[1]);
    refs = ReadLines(argv[2]);
    if (hyps.size() != refs.size()) {
      std::fprintf(stderr, "%zu hypotheses but %zu references\n", hyps.size(),
                   refs.size());
      return 2;
    }
  } else if (argc == 1) {
    Synthesize(100000, &hyps, &refs);
  } else {
    std::fprintf(stderr, "usage: %s [hyps.txt refs.txt]\n", argv[0]);
    return 2;
  }
  std::printf("%zu segments\n", hyps.size());
  std::printf("%-14s %10s %14s %12s\n", "metric", "seconds", "segments/s",
              "score");
  const auto run = [&](const char* name, auto make) {
    double score = 0;
    const double s = Seconds([&] {
      auto metric = make();
      for (size_t i = 0; i < hyps.size(); ++i) {
        metric.Add(hyps[i], {std::optional<std::string_view>(refs[i])});
      }
      score = metric.Score().score;
    });
    std::printf("%-14s %10.3f %14.0f %12.6f\n", name, s,
                static_cast<double>(hyps.size()) / s, score);
  };
  run("bleu 13a", [] { return Bleu(BleuOptions{}); });
  run("bleu intl", [] {
    BleuOptions o;
    o.tokenize = "intl";
    return Bleu(o);
  });
  run("chrF", [] { return Chrf(ChrfOptions{}); });
  run("chrF++", [] {
    ChrfOptions o;
    o.word_order = 2;
    return Chrf(o);
  });
  return 0;
}
