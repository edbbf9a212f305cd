#include "omnibind/apps/digits/digits_benchmark.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <ctime>
#include <map>

#include "omnibind/binding/binding_config.h"
#include "omnibind/binding/every_expert_config.h"
#include "omnibind/binding/omnibind_model.h"
#include "omnibind/common/error.h"
#include "omnibind/evaluation/eval_set.h"
#include "omnibind/evaluation/evaluate_binding.h"
#include "omnibind/experts/zoo/zoo_expert.h"
#include "omnibind/experts/zoo/zoo_inputs.h"
#include "omnibind/experts/zoo/zoo_model.h"
#include "omnibind/media/audio.h"
#include "omnibind/media/idx_reader.h"
#include "omnibind/tensor_io/compute_threads.h"
#include "omnibind/training/binding_trainer.h"
#include "omnibind/training/embedding_pool.h"
#include "omnibind/training/tuple_mining.h"
#include "omnibind/training/zoo/zoo_trainer.h"

namespace omnibind::apps {
namespace zoo = experts::zoo;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kWords{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"};
const std::vector<std::string> kSpeakers{"george", "jackson", "lucas", "nicolas", "theo", "yweweler"};
// Captions: how a text describes a spoken digit (source 0) or a handwritten one (source 1).
const std::vector<std::string> kAudioTemplates{"{}", "the spoken digit {}", "someone says {}",
                                               "a recording of the word {}", "a voice saying {}"};
const std::vector<std::string> kImageTemplates{"{}", "a handwritten {}", "the digit {} written by hand",
                                               "a picture of the number {}", "a scanned handwritten digit {}"};
// Zero-shot class prompts (an ensemble per class, neutral about the modality).
const std::vector<std::string> kPromptTemplates{"{}", "the digit {}", "the number {}"};

std::string fill(const std::string& t, int digit) {
  std::string s = t;
  s.replace(s.find("{}"), 2, kWords[static_cast<size_t>(digit)]);
  return s;
}

struct Clips {
  std::vector<std::string> paths;
  std::vector<int64_t> labels;
};
// Recordings [first, last] of every digit and speaker, digit-major.
Clips fsdd_clips(const fs::path& dir, int first, int last) {
  Clips c;
  for (int d = 0; d < 10; ++d)
    for (const auto& s : kSpeakers)
      for (int i = first; i <= last; ++i) {
        fs::path p = dir / (std::to_string(d) + "_" + s + "_" + std::to_string(i) + ".wav");
        require(fs::is_regular_file(p), "digits: missing FSDD recording " + p.string());
        c.paths.push_back(p.string());
        c.labels.push_back(d);
      }
  return c;
}

at::Tensor audio_inputs(const Clips& clips, const zoo::ZooAudioConfig& cfg) {
  std::vector<at::Tensor> rows(clips.paths.size());
  at::parallel_for(0, static_cast<int64_t>(rows.size()), 8, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const auto& p = clips.paths[static_cast<size_t>(i)];
      rows[static_cast<size_t>(i)] = zoo::zoo_audio_input(media::decode_audio_file(p), cfg, p);
    }
  });
  return at::stack(rows);
}

at::Tensor image_inputs(const media::IdxImages& mnist, const std::vector<int64_t>& index, const zoo::ZooImageConfig& cfg) {
  std::vector<at::Tensor> rows;
  rows.reserve(index.size());
  for (int64_t i : index) rows.push_back(zoo::zoo_grey_image_input(mnist.image(i), mnist.rows, mnist.cols, cfg));
  return at::stack(rows);
}

at::Tensor text_inputs(const std::vector<std::string>& texts, const zoo::ZooTextConfig& cfg) {
  std::vector<at::Tensor> rows;
  rows.reserve(texts.size());
  for (const auto& t : texts) rows.push_back(zoo::zoo_text_input(t, cfg));
  return at::stack(rows);
}

zoo::ZooConfig expert_config(const std::vector<std::string>& modalities, const std::string& key, const DigitsSize& z,
                             bool small) {
  auto c = zoo::default_zoo_config(modalities, z.dim, key);
  if (c.audio) {
    c.audio->channels = small ? std::vector<int64_t>{8, 16, 16} : std::vector<int64_t>{8, 16, 32};
    c.audio->hidden = 64;
  }
  if (c.image) {
    c.image->channels = small ? std::vector<int64_t>{8, 16, 16} : std::vector<int64_t>{8, 16, 32};
    c.image->hidden = 64;
  }
  c.text->buckets = 1024;
  c.text->width = 64;
  c.text->hidden = 64;
  return c;
}

// Unit embeddings of stacked inputs, batched, no grad.
at::Tensor embed(const zoo::ZooModel& model, const std::string& modality, const at::Tensor& inputs) {
  c10::InferenceMode guard;
  std::vector<at::Tensor> parts;
  for (int64_t b = 0; b < inputs.size(0); b += 512)
    parts.push_back(model.forward(modality, inputs.slice(0, b, std::min(inputs.size(0), b + 512))));
  return at::cat(parts).contiguous();
}

struct Expert {
  zoo::ZooConfig config;
  zoo::ZooWeights weights;
  zoo::ZooModel model;
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

DigitsSize digits_size(const std::string& name) {
  DigitsSize z;
  z.name = name;
  if (name == "full") return z;
  if (name == "ci") {
    z.at_first = 5, z.at_last = 10;
    z.ait_first = 28, z.ait_last = 31;
    z.it_images = 1000;
    z.ait_images = 500;
    z.zoo_epochs = 10;
    z.ait_epochs = 8;
    z.projector_epochs = 3;
    z.router_epochs = 3;
    z.caption_repeats = 2;
    return z;
  }
  throw InputError("digits: unknown size '" + name + "' (full or ci)");
}

DigitsResult run_digits_benchmark(const DigitsOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  auto step = std::chrono::steady_clock::now();
  nlohmann::json timing = nlohmann::json::object(), cpu = nlohmann::json::object();
  std::clock_t cpu_step = std::clock();  // process CPU time: what a stage costs, whatever the machine's load
  auto say = [&](const std::string& s) {
    if (o.progress) o.progress(s);
  };
  auto lap = [&](const std::string& stage) {
    timing[stage] = seconds_since(step);
    cpu[stage] = static_cast<double>(std::clock() - cpu_step) / CLOCKS_PER_SEC;
    step = std::chrono::steady_clock::now();
    cpu_step = std::clock();
  };
  const DigitsSize& z = o.size;
  require(z.at_first > z.test_last && z.ait_first > z.at_last && z.ait_last <= 49 && z.at_first <= z.at_last &&
              z.ait_first <= z.ait_last && z.test_last >= 0,
          "digits: FSDD recording ranges must be disjoint, in order, within 0-49");
  if (o.threads > 0) tensor_io::set_compute_threads(o.threads);
  at::manual_seed(o.seed);
  fs::create_directories(o.out_dir);

  // ---- data ----
  say("loading FSDD and MNIST from " + o.data_dir.string());
  const fs::path fsdd = o.data_dir / "fsdd";
  const auto mnist = media::read_idx_images((o.data_dir / "mnist_test" / "t10k-images-idx3-ubyte.gz").string());
  const auto mnist_labels = media::read_idx_labels((o.data_dir / "mnist_test" / "t10k-labels-idx1-ubyte.gz").string());
  require(mnist.count == static_cast<int64_t>(mnist_labels.size()) && mnist.count >= 2,
          "digits: MNIST images and labels disagree in count");
  const int64_t half = mnist.count / 2;
  const Clips at_clips = fsdd_clips(fsdd, z.at_first, z.at_last);
  const Clips ait_clips = fsdd_clips(fsdd, z.ait_first, z.ait_last);
  const Clips test_clips = fsdd_clips(fsdd, 0, z.test_last);
  const int64_t per_class = static_cast<int64_t>(kSpeakers.size()) * (z.test_last + 1);
  // MNIST indices: half 1 -> IT; half 2 -> held-out (first per_class of each digit), then AIT.
  std::vector<int64_t> it_index, heldout_index, ait_index;
  std::vector<std::vector<int64_t>> heldout_by_class(10);
  for (int64_t i = 0; i < half && static_cast<int64_t>(it_index.size()) < z.it_images; ++i) it_index.push_back(i);
  for (int64_t i = half; i < mnist.count; ++i) {
    auto& h = heldout_by_class[mnist_labels[static_cast<size_t>(i)]];
    if (static_cast<int64_t>(h.size()) < per_class)
      h.push_back(i);
    else if (static_cast<int64_t>(ait_index.size()) < z.ait_images)
      ait_index.push_back(i);
  }
  for (const auto& h : heldout_by_class) require(static_cast<int64_t>(h.size()) == per_class, "digits: MNIST half 2 too small");
  auto labels_of = [&](const std::vector<int64_t>& index) {
    std::vector<int64_t> l;
    for (int64_t i : index) l.push_back(mnist_labels[static_cast<size_t>(i)]);
    return l;
  };

  Expert at{expert_config({"audio", "text"}, "AT", z, false), {}, {}};
  Expert it{expert_config({"image", "text"}, "IT", z, false), {}, {}};
  Expert ait{expert_config({"audio", "image", "text"}, "AIT", z, true), {}, {}};
  const zoo::ZooAudioConfig& acfg = *at.config.audio;  // every expert's audio/image/text inputs are alike
  const at::Tensor at_audio = audio_inputs(at_clips, acfg);
  const at::Tensor ait_audio = audio_inputs(ait_clips, acfg);
  const at::Tensor test_audio = audio_inputs(test_clips, acfg);
  const zoo::ZooImageConfig& icfg = *it.config.image;
  const zoo::ZooTextConfig& tcfg = *at.config.text;
  lap("load_data");

  // ---- experts, each on its own disjoint paired data ----
  training::zoo::ZooTrainOptions train;
  train.batch = 64;
  train.lr = 2e-3;
  train.threads = o.threads;
  auto fit = [&](Expert& e, const training::zoo::ZooPairedData& data, int epochs, uint64_t salt) {
    train.epochs = epochs;
    train.seed = o.seed * 1000 + salt;
    e.weights = training::zoo::train_zoo_expert(e.config, data, train, [&](const training::zoo::ZooTrainProgress& p) {
      say("zoo " + e.config.key + " epoch " + std::to_string(p.epoch) + "/" + std::to_string(p.epochs) +
          " loss " + std::to_string(p.loss));
    });
    e.model = zoo::ZooModel::bind(e.config, e.weights, e.config.key);
    zoo::write_zoo_file((o.out_dir / (e.config.key + ".safetensors")).string(), e.config, e.weights,
                        {{"trained_on", "digits benchmark (" + z.name + ")"}});
  };
  auto captions = [&](const std::vector<int64_t>& labels, const std::vector<std::string>& templates, size_t offset) {
    std::vector<std::string> t;
    for (size_t i = 0; i < labels.size(); ++i)
      t.push_back(fill(templates[(i + offset) % templates.size()], static_cast<int>(labels[i])));
    return t;
  };
  {
    training::zoo::ZooPairedData d;
    d.inputs["audio"] = at_audio;
    d.inputs["text"] = text_inputs(captions(at_clips.labels, kAudioTemplates, 0), tcfg);
    d.group = at::tensor(at_clips.labels, at::kLong);
    fit(at, d, z.zoo_epochs, 1);
  }
  lap("train_AT");
  {
    auto l = labels_of(it_index);
    training::zoo::ZooPairedData d;
    d.inputs["image"] = image_inputs(mnist, it_index, icfg);
    d.inputs["text"] = text_inputs(captions(l, kImageTemplates, 0), tcfg);
    d.group = at::tensor(l, at::kLong);
    fit(it, d, z.zoo_epochs, 2);
  }
  lap("train_IT");
  {
    // Every AIT image is an item; the k-th clip of a digit joins the k-th image of that digit.
    const auto l = labels_of(ait_index);
    const int64_t n = static_cast<int64_t>(l.size());
    std::vector<std::vector<int64_t>> clips_of(10);
    for (size_t i = 0; i < ait_clips.labels.size(); ++i) clips_of[ait_clips.labels[i]].push_back(static_cast<int64_t>(i));
    std::vector<size_t> used(10, 0);
    at::Tensor audio = at::zeros({n, ait_audio.size(1), ait_audio.size(2), ait_audio.size(3)});
    at::Tensor present = at::zeros({n}, at::kBool);
    std::vector<std::string> texts;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = l[static_cast<size_t>(i)];
      const bool with_audio = used[c] < clips_of[c].size();
      if (with_audio) {
        audio[i].copy_(ait_audio[clips_of[c][used[c]++]]);
        present[i].fill_(true);
      }
      const auto& templates = (with_audio && i % 2 == 0) ? kAudioTemplates : kImageTemplates;
      texts.push_back(fill(templates[static_cast<size_t>(i / 2) % templates.size()], static_cast<int>(c)));
    }
    training::zoo::ZooPairedData d;
    d.inputs["audio"] = audio;
    d.present["audio"] = present;
    d.inputs["image"] = image_inputs(mnist, ait_index, icfg);
    d.inputs["text"] = text_inputs(texts, tcfg);
    d.group = at::tensor(l, at::kLong);
    fit(ait, d, z.ait_epochs, 3);
  }
  lap("train_AIT");

  // ---- unpaired training pool: every training item of a modality by every expert covering it ----
  say("embedding the unpaired training pools");
  const std::vector<Expert*> experts{&it, &at, &ait};  // backbone first
  training::PoolManifest manifest;
  for (const auto* e : experts) manifest.experts.push_back({e->config.key, e->config.modalities(), e->config.dim});
  manifest.backbone = "IT";
  manifest.classes = kWords;
  const fs::path pool_dir = o.out_dir / "train_pool";
  {
    training::PoolWriter writer(pool_dir, manifest);
    std::vector<int64_t> audio_labels = at_clips.labels;
    audio_labels.insert(audio_labels.end(), ait_clips.labels.begin(), ait_clips.labels.end());
    const at::Tensor all_audio = at::cat({at_audio, ait_audio});
    std::vector<int64_t> image_index = it_index;
    image_index.insert(image_index.end(), ait_index.begin(), ait_index.end());
    const at::Tensor all_images = image_inputs(mnist, image_index, icfg);
    std::vector<std::string> texts;
    std::vector<int64_t> text_labels, text_source;
    for (int r = 0; r < z.caption_repeats; ++r)
      for (int d = 0; d < 10; ++d)
        for (int s = 0; s < 2; ++s)
          for (const auto& t : s == 0 ? kAudioTemplates : kImageTemplates) {
            texts.push_back(fill(t, d));
            text_labels.push_back(d);
            text_source.push_back(s);
          }
    const at::Tensor all_texts = text_inputs(texts, tcfg);
    std::map<std::string, at::Tensor> a, i, t;
    for (const auto* e : experts) {
      if (e->config.has("audio")) a[e->config.key] = embed(e->model, "audio", all_audio);
      if (e->config.has("image")) i[e->config.key] = embed(e->model, "image", all_images);
      t[e->config.key] = embed(e->model, "text", all_texts);
    }
    writer.add("audio", a, {{"label", at::tensor(audio_labels, at::kLong)}});
    writer.add("image", i, {{"label", at::tensor(labels_of(image_index), at::kLong)}});
    writer.add("text", t, {{"label", at::tensor(text_labels, at::kLong)}, {"source", at::tensor(text_source, at::kLong)}});
    writer.finish();
  }
  lap("embed_pools");

  // ---- binding: pseudo tuples from the unpaired pool, heads + routers ----
  std::vector<binding::ExpertSpec> specs;
  for (const auto* e : experts) specs.push_back({e->config.key, e->config.modalities(), e->config.dim, {}});
  const auto config = binding::every_expert_config("digits", std::move(specs), "IT", z.heads, z.projector_hidden, {64, 32});
  auto pool = training::EmbeddingPool::open(pool_dir);
  training::check_pool_against_config(pool, config);
  training::MiningOptions mining;
  mining.seed = o.seed;
  nlohmann::json mining_stats;
  say("mining pseudo tuples");
  const auto tuples = training::mine_tuples(pool, mining, &mining_stats);
  lap("mine_tuples");
  training::TrainOptions bt;
  bt.seed = o.seed;
  bt.threads = o.threads;
  bt.projector_epochs = z.projector_epochs;
  bt.router_epochs = z.router_epochs;
  bt.batch = 128;
  std::string last_stage;
  bt.progress = [&](const training::TrainProgress& p) {
    if (p.stage != last_stage) say("binding " + p.stage + " loss " + std::to_string(p.loss));
    last_stage = p.stage;
  };
  const auto state = training::train_binding(pool, tuples, config, bt);
  const fs::path heads = o.out_dir / "heads.safetensors";
  training::write_binding_checkpoint(heads, state, config);
  const auto model = training::load_trained_model(state, config);
  lap("train_binding");

  // ---- held-out evaluation set ----
  say("evaluating on held-out data");
  evaluation::EvalSet eval;
  eval.classes = kWords;
  eval.num_classes = 10;
  {
    // Audio: FSDD test clips; image: the held-out MNIST images; the k-th of each digit share a pair id.
    std::vector<int64_t> audio_pair, image_index, image_label, image_pair;
    std::vector<int64_t> seen(10, 0);
    for (int64_t l : test_clips.labels) audio_pair.push_back(l * per_class + seen[l]++);
    for (int64_t c = 0; c < 10; ++c)
      for (int64_t k = 0; k < per_class; ++k) {
        image_index.push_back(heldout_by_class[c][k]);
        image_label.push_back(c);
        image_pair.push_back(c * per_class + k);
      }
    const at::Tensor images = image_inputs(mnist, image_index, icfg);
    auto& a = eval.modalities["audio"];
    auto& im = eval.modalities["image"];
    for (const auto* e : experts) {
      if (e->config.has("audio")) a.experts[e->config.key] = embed(e->model, "audio", test_audio);
      if (e->config.has("image")) im.experts[e->config.key] = embed(e->model, "image", images);
    }
    a.label = at::tensor(test_clips.labels, at::kLong);
    a.pair = at::tensor(audio_pair, at::kLong);
    im.label = at::tensor(image_label, at::kLong);
    im.pair = at::tensor(image_pair, at::kLong);
    std::vector<std::string> prompts;
    std::vector<int64_t> prompt_class;
    for (int d = 0; d < 10; ++d)
      for (const auto& t : kPromptTemplates) {
        prompts.push_back(fill(t, d));
        prompt_class.push_back(d);
      }
    const at::Tensor prompt_inputs = text_inputs(prompts, tcfg);
    for (const auto* e : experts) eval.prompts[e->config.key] = embed(e->model, "text", prompt_inputs);
    eval.prompt_class = at::tensor(prompt_class, at::kLong);
  }
  eval.validate();
  auto table = evaluation::evaluate_binding(eval, model);
  table.title = "Real data: spoken digits (FSDD) x handwritten digits (MNIST), held-out";
  table.notes.push_back("zero-shot/audio: " + std::to_string(test_clips.labels.size()) +
                        " FSDD test clips (recordings 0-" + std::to_string(z.test_last) +
                        " of every speaker); zero-shot/image: " + std::to_string(10 * per_class) +
                        " held-out MNIST images (half 2); chance 0.1");
  table.notes.push_back("audio<->image: the k-th held-out clip of a digit is paired with the k-th held-out image of that "
                        "digit (a true pair = same class, " + std::to_string(per_class) +
                        " pairs per class): chance R@10 = " + std::to_string(10.0 / (10.0 * per_class)).substr(0, 5) +
                        ", a class-perfect model that cannot tell instances apart reaches R@10 ~ " +
                        std::to_string(std::min(1.0, 10.0 / per_class)).substr(0, 5));
  lap("evaluate");
  evaluation::write_eval_table(table, (o.out_dir / "digits_table.json").string(), (o.out_dir / "digits_table.md").string());

  DigitsResult r;
  r.table = table;
  nlohmann::json headline = nlohmann::json::object();
  for (const auto& row : table.rows) {
    nlohmann::json h = nlohmann::json::object();
    for (const auto& task : table.tasks)
      if (row.covers(task)) h[task.key()] = row.headline(task);
    headline[row.name] = h;
  }
  r.summary = {{"benchmark", "digits"},
               {"size", z.name},
               {"seed", o.seed},
               {"threads", at::get_num_threads()},
               {"items",
                {{"AT_audio", at_clips.paths.size()},
                 {"AIT_audio", ait_clips.paths.size()},
                 {"IT_images", it_index.size()},
                 {"AIT_images", ait_index.size()},
                 {"test_audio", test_clips.paths.size()},
                 {"test_images", 10 * per_class},
                 {"tuples", tuples.size()}}},
               {"mining", {{"purity", mining_stats.value("purity", nlohmann::json())}, {"plan", mining_stats.value("plan", nlohmann::json())}}},
               {"headline", headline},
               {"seconds", timing},
               {"cpu_seconds", cpu},
               {"total_seconds", seconds_since(t0)}};
  return r;
}

}  // namespace omnibind::apps
