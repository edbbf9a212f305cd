// The real-data digits benchmark (issue 7 item 3; bench/digits and tests/apps run it): three zoo
// experts trained on DISJOINT data -- AT (FSDD spoken digits, part A + digit words), IT (the backbone:
// MNIST half 1 + words), AIT (ImageBind-like: FSDD part B + MNIST half 2 paired by digit class + words)
// -- bound with the project's pipeline from UNPAIRED pools (embedding_pool.h, mine_tuples,
// train_binding) and evaluated on held-out data: zero-shot spoken-digit and handwritten-digit
// classification and audio<->image retrieval, for each single expert, uniform and learned routing.
//
// Splits (docs/BENCHMARKS.md "Real data: digits"):
//   FSDD test = recordings 0..test_last of every digit and speaker (the dataset's own rule: 0-4);
//   AT trains on recordings [at_first, at_last], AIT on [ait_first, ait_last] (disjoint).
//   MNIST test set, half 1 = images 0-4999 (IT trains on the first it_images of it), half 2 = 5000-9999:
//   held out = the first P images of each digit in half 2 (P = 6 speakers x test recordings = the
//   held-out clips per digit, 30), AIT trains on up to ait_images of the rest. The retrieval tuples pair the k-th held-out clip of a digit with the k-th held-out
//   image of that digit, one to one: a "true pair" means the same class, so a model that knows only
//   the class ranks the true partner among P equally good ones (R@K ceiling ~ K / P, chance K / 10P).
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "omnibind/evaluation/eval_table.h"

namespace omnibind::apps {

struct DigitsSize {
  std::string name;
  int at_first = 5, at_last = 27;    // FSDD recordings of the audio-text expert
  int ait_first = 28, ait_last = 49; // FSDD recordings of the audio-image-text expert
  int test_last = 4;                 // held-out recordings 0..test_last
  int64_t it_images = 5000;          // MNIST half 1 images of the image-text expert
  int64_t ait_images = 4700;         // MNIST half 2 images (after the held-out ones) of the AIT expert
  int64_t dim = 32;
  int zoo_epochs = 20, ait_epochs = 12;
  int projector_epochs = 6, router_epochs = 6;
  int64_t heads = 3, projector_hidden = 256;
  int caption_repeats = 8;           // copies of every (word, template) caption in the unpaired text pool
};

// "full" (the benchmark) or "ci" (the reduced-size test); InputError naming both otherwise.
DigitsSize digits_size(const std::string& name);

struct DigitsOptions {
  std::filesystem::path data_dir;  // holds fsdd/ and mnist_test/
  std::filesystem::path out_dir;   // experts, pools, heads and the table are written here (created)
  DigitsSize size = digits_size("full");
  uint64_t seed = 0;
  int threads = 1;                 // at::set_num_threads; results are reproducible for a fixed count
  std::function<void(const std::string&)> progress;  // one line per stage
};

struct DigitsResult {
  evaluation::EvalTable table;
  nlohmann::json summary;  // sizes, wall and CPU seconds per stage, mining purity, every row's headline numbers
};

// Runs everything; writes out_dir/{AT,IT,AIT}.safetensors (zoo experts), out_dir/train_pool/,
// out_dir/heads.safetensors, out_dir/digits_table.{md,json}. InputError when data files are missing.
DigitsResult run_digits_benchmark(const DigitsOptions& options);

}  // namespace omnibind::apps
