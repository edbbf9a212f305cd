// SafeUnpickler on hand-written pickles: the opcodes torch.save emits decode to the right values,
// and hostile or broken input (forbidden globals, truncation, unknown opcodes, deep nesting) is
// an InputError naming the source.
#include <gtest/gtest.h>

#include "omnibind/common/error.h"
#include "omnibind/tensor_io/safe_unpickler.h"
#include "torch_test_files.h"

using namespace omnibind;
using namespace omnibind::tensor_io;
using namespace omnibind::testkit::torchfiles;
using K = PickleValue::Kind;
using namespace std::string_literals;

namespace {

PickleRef unpickle(const std::string& bytes, PersistentLoader loader = nullptr) {
  SafeUnpickler up("mem.pkl", "", reinterpret_cast<const std::byte*>(bytes.data()), bytes.size(), std::move(loader));
  return up.load();
}

PickleRef any_storage(const PickleRef&) {
  auto v = make_value(K::Storage);
  v->storage = std::make_shared<TorchStorage>();
  return v;
}

void expect_error(const std::string& bytes, const std::string& needle) {
  try {
    unpickle(bytes, any_storage);
    ADD_FAILURE() << "accepted: " << needle;
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(msg.rfind("mem.pkl: ", 0), 0u) << "must start with the file: " << msg;
  }
}

}  // namespace

TEST(SafeUnpickler, DecodesScalarsContainersAndMemo) {
  // {'a': [1, -2, 70000, -5, 2**40], 'b': (1.5, True, None), b'k': 'x'} with memo reuse.
  std::string p = "\x80\x02}q\x00("s + unicode("a") + "](K\x01J\xfe\xff\xff\xffJ\x70\x11\x01\x00"s +
                  std::string("\x8a\x01\xfb\x8a\x06\x00\x00\x00\x00\x00\x01", 11) + "e" +
                  "\x8c\x01" "b" "G\x3f\xf8\x00\x00\x00\x00\x00\x00\x88N\x87q\x01"s + "C\x01k" + unicode("x") +
                  unicode("c") + "h\x01" + "u.";
  PickleRef v = unpickle(p);
  ASSERT_EQ(v->kind, K::Dict);
  ASSERT_EQ(v->dict_size(), 4u);
  PickleRef a = v->dict_get("a");
  ASSERT_EQ(a->kind, K::List);
  ASSERT_EQ(a->items.size(), 5u);
  EXPECT_EQ(a->items[0]->i, 1);
  EXPECT_EQ(a->items[1]->i, -2);
  EXPECT_EQ(a->items[2]->i, 70000);
  EXPECT_EQ(a->items[3]->i, -5);
  EXPECT_EQ(a->items[4]->i, int64_t{1} << 40);
  PickleRef b = v->dict_get("b");
  ASSERT_EQ(b->kind, K::Tuple);
  EXPECT_DOUBLE_EQ(b->items[0]->f, 1.5);
  EXPECT_TRUE(b->items[1]->b);
  EXPECT_EQ(b->items[2]->kind, K::None);
  EXPECT_EQ(v->dict_key(2)->kind, K::Bytes);
  EXPECT_EQ(v->dict_get("c").get(), b.get());  // memo GET returns the same object
}

TEST(SafeUnpickler, DecodesTextProtocolZero) {
  // pickle.dumps({'a': 5, 'b': [True]}, protocol=0)
  PickleRef v = unpickle("(dp0\nVa\np1\nI5\nsVb\np2\n(lp3\nI01\nas.");
  ASSERT_EQ(v->kind, K::Dict);
  EXPECT_EQ(v->dict_get("a")->i, 5);
  EXPECT_TRUE(v->dict_get("b")->items.at(0)->b);
}

TEST(SafeUnpickler, ReadsConsecutivePicklesAndBigInts) {
  // Legacy torch files start with the magic number 0x1950a86a20f9469cfc6c (a 10-byte LONG1).
  std::string two = std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15) + "\x80\x02M\xe9\x03.";
  SafeUnpickler up("mem.pkl", "", reinterpret_cast<const std::byte*>(two.data()), two.size());
  PickleRef magic = up.load();
  EXPECT_EQ(magic->kind, K::BigInt);
  EXPECT_EQ(magic->s.size(), 10u);
  EXPECT_EQ(up.load()->i, 1001);
  EXPECT_EQ(up.position(), two.size());
}

TEST(SafeUnpickler, RebuildsTensorsThroughThePersistentLoader) {
  auto storage = std::make_shared<TorchStorage>();
  storage->dtype = DType::F32;
  std::string seen_key;
  auto loader = [&](const PickleRef& pid) {
    seen_key = pid->items.at(2)->s;
    auto v = make_value(K::Storage);
    v->storage = storage;
    return v;
  };
  PickleRef v = unpickle(state_dict_pickle({{"w", tensor_call("FloatStorage", "3", 6, 1, {2, 2}, {1, 2})}}), loader);
  EXPECT_EQ(seen_key, "3");
  PickleRef t = v->dict_get("w");
  ASSERT_EQ(t->kind, K::Tensor);
  EXPECT_EQ(t->tensor->storage, storage);
  EXPECT_EQ(t->tensor->storage_offset, 1);
  EXPECT_EQ(t->tensor->shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(t->tensor->strides, (std::vector<int64_t>{1, 2}));
}

TEST(SafeUnpickler, RefusesForbiddenGlobals) {
  // os.system('ls') via GLOBAL + REDUCE, builtins.eval via STACK_GLOBAL: refused at the global.
  expect_error("\x80\x02" + global("os", "system") + unicode("ls") + "\x85R.", "refusing to unpickle global 'os.system'");
  expect_error("\x80\x04\x8c\x08" "builtins" "\x8c\x04" "eval\x93" + unicode("1") + "\x85R.",
               "refusing to unpickle global 'builtins.eval'");
  expect_error("\x80\x02" + global("torch", "load") + ").", "refusing to unpickle global 'torch.load'");
  // An allowed type is still not callable.
  expect_error("\x80\x02" + global("torch", "float32") + ")R.", "cannot call");
}

TEST(SafeUnpickler, RefusesTruncatedPickles) {
  const std::string good = state_dict_pickle({{"w", tensor_call("FloatStorage", "0", 4, 0, {4}, {1})}});
  for (size_t cut : {size_t{1}, size_t{5}, good.size() / 2, good.size() - 1})
    expect_error(good.substr(0, cut), "truncated");
  expect_error("\x80\x02X\xff\xff\xff\x7f" "abc", "truncated");  // a 2 GiB string in 3 bytes
}

TEST(SafeUnpickler, RefusesUnknownAndUnsupportedOpcodes) {
  expect_error("\x80\x02\xff.", "unsupported pickle opcode 0xff");
  expect_error("\x80\x02(" + global("collections", "OrderedDict") + "o.", "(OBJ)");
  expect_error("\x80\x07N.", "unsupported pickle protocol 7");
}

TEST(SafeUnpickler, RefusesDeepNesting) {
  expect_error("\x80\x02" + std::string(100000, '(') + ".", "nested deeper");
  // 10000 lists nested by APPEND without marks.
  expect_error("\x80\x02" + std::string(10000, ']') + std::string(9999, 'a') + ".", "nested deeper");
}

TEST(SafeUnpickler, RefusesStructuralCorruption) {
  expect_error("\x80\x02.", "STOP with 0 values");
  expect_error("\x80\x02NN.", "STOP with 2 values");
  expect_error("\x80\x02h\x05.", "memo key 5");
  expect_error("\x80\x02Na.", "underflow");
  expect_error("\x80\x02Nu.", "MARK expected");
  expect_error("\x80\x02}]Ns.", "not supported");  // list as a dict key
  expect_error("\x80\x02" + global("torch._utils", "_rebuild_tensor_v2") + "K\x01\x85R.", "arguments");
  try {
    unpickle("\x80\x02(" + unicode("storage") + "tQ.");  // no loader: storages are not expected
    ADD_FAILURE();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("persistent id"), std::string::npos) << e.what();
  }
}

TEST(SafeUnpickler, RefusesOversizedDictKeys) {
  // Keys are hashed on every SETITEM: a megabyte key re-inserted through the memo would be slow.
  expect_error("\x80\x02}" + unicode(std::string(2000, 'k')) + "Ns.", "longer than 1 KiB");
}

TEST(SafeUnpickler, UnwrapsParametersAndPlainTensorSubclassRebuilds) {
  const std::string tensor = tensor_call("HalfStorage", "0", 4, 0, {4}, {1});
  // torch._utils._rebuild_parameter(tensor, True, OrderedDict()) -> the tensor
  PickleRef p = unpickle("\x80\x02" + global("torch._utils", "_rebuild_parameter") + "(" + tensor + "\x88" +
                         global("collections", "OrderedDict") + ")Rt" + "R.", any_storage);
  ASSERT_EQ(p->kind, K::Tensor);
  EXPECT_EQ(p->tensor->shape, (std::vector<int64_t>{4}));
  // torch._tensor._rebuild_from_type_v2(_rebuild_tensor_v2, torch.nn.parameter.Parameter, args, {})
  std::string args = "((" + unicode("storage") + global("torch", "FloatStorage") + unicode("0") + unicode("cpu") +
                     int1(6) + "tQ" + int1(0) + "(" + int1(2) + int1(3) + "t(" + int1(3) + int1(1) + "t\x89" +
                     global("collections", "OrderedDict") + ")Rt";
  PickleRef q = unpickle("\x80\x02" + global("torch._tensor", "_rebuild_from_type_v2") + "(" +
                         global("torch._utils", "_rebuild_tensor_v2") + global("torch.nn.parameter", "Parameter") + args +
                         "}t" + "R.", any_storage);
  ASSERT_EQ(q->kind, K::Tensor);
  EXPECT_EQ(q->tensor->strides, (std::vector<int64_t>{3, 1}));
  // ... but not with an arbitrary type, even an allowed one.
  expect_error("\x80\x02" + global("torch._tensor", "_rebuild_from_type_v2") + "(" + global("torch._utils", "_rebuild_tensor_v2") +
                   global("torch", "float32") + args + "}t" + "R.",
               "_rebuild_from_type_v2 called with unsupported arguments");
}
