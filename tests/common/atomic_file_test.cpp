#include <gtest/gtest.h>

#include <filesystem>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "testing/test_support.h"

namespace fs = std::filesystem;
using namespace omnibind;

TEST(AtomicFile, ReplacesWholeFile) {
  auto dir = testkit::make_temp_dir("atomic");
  auto path = dir + "/a.bin";
  write_bytes_atomically(path, "first");
  write_bytes_atomically(path, "second");
  EXPECT_EQ(read_file_bytes(path), "second");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}), 1);
}

TEST(AtomicFile, FailedWriteLeavesOldFileAndNoTemporary) {
  auto dir = testkit::make_temp_dir("atomic");
  auto path = dir + "/a.bin";
  write_bytes_atomically(path, "old");
  EXPECT_THROW(write_file_atomically(path,
                                     [](const std::string& tmp) {
                                       write_bytes_atomically(tmp, "partial");
                                       throw InputError("boom");
                                     }),
               InputError);
  EXPECT_EQ(read_file_bytes(path), "old");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}), 1);
}

TEST(AtomicFile, MissingFileIsInputError) {
  EXPECT_THROW(read_file_bytes("/nonexistent/x"), InputError);
}
