// docs/blob-format.md is enough to write a function blob by hand: this test assembles `add` of
// examples/add.shape from mnemonics, using only what the document's tables say (opcode numbers
// and operand formats from "Opcodes", the word layout of "Words", the field order and widths of
// "Canonical bytes", read from the document at test time), and checks that the SHA-256 of the
// bytes is what `shapex hash examples/add.shape add` prints. It then reads `shapex cache cat`
// output by the "Transport / disk envelope" table and finds the same canonical bytes in it.
//
// On purpose it includes no engine header and links no shapex library: only OpenSSL (for
// SHA-256), the standard library and the shapex binary (SHAPEX_BIN).
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "testing/markdown_table.h"

namespace {

using Bytes = std::vector<uint8_t>;

std::string ReadDoc() {
  std::string doc;
  EXPECT_TRUE(shapex_testing::ReadTextFile(SHAPEX_BLOB_FORMAT_MD, &doc))
      << "cannot read " << SHAPEX_BLOB_FORMAT_MD;
  return doc;
}

void PutLe(Bytes* out, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out->push_back(static_cast<uint8_t>(v >> (8 * i)));
}

std::string Hex(const uint8_t* p, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += kDigits[p[i] >> 4];
    s += kDigits[p[i] & 15];
  }
  return s;
}

std::string Sha256Hex(const Bytes& bytes) {
  uint8_t digest[32];
  unsigned int length = 0;
  EXPECT_EQ(EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr), 1);
  return Hex(digest, 32);
}

// Runs a shell command; its stdout (binary-safe) and exit status.
struct CommandResult {
  std::string out;
  int status = -1;
};
CommandResult RunCommand(const std::string& command) {
  CommandResult r;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = ::pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// ---- the assembler: "Opcodes" and "Words" of docs/blob-format.md ----

struct OpSpec {
  uint32_t number = 0;
  std::string format;                 // ABC, ABx, AsBx
  std::vector<std::string> operands;  // the kinds of A, B(/Bx/sBx), C
};

std::map<std::string, OpSpec> DocumentedOpcodes(const std::string& doc) {
  shapex_testing::MarkdownTable t = shapex_testing::TableAfter(doc, "### Opcodes");
  int number = t.Column("#"), name = t.Column("mnemonic"), format = t.Column("format");
  int a = t.Column("A"), b = t.Column("B"), c = t.Column("C");
  std::map<std::string, OpSpec> ops;
  if (number < 0 || name < 0 || format < 0 || a < 0 || b < 0 || c < 0) return ops;
  for (const auto& row : t.rows) {
    if (row.size() != t.header.size()) continue;
    OpSpec op;
    op.number = static_cast<uint32_t>(std::stoul(row[number]));
    op.format = row[format];
    op.operands = {row[a], row[b], row[c]};
    ops[row[name]] = op;
  }
  return ops;
}

// "ADD 2 0 1" -> one word. Operands are given for every field whose kind is not '-', in the
// order A, B (Bx, sBx), C; unused fields are 0.
bool Assemble(const std::map<std::string, OpSpec>& ops, const std::string& line, uint32_t* word,
              std::string* error) {
  std::istringstream in(line);
  std::string mnemonic;
  in >> mnemonic;
  auto it = ops.find(mnemonic);
  if (it == ops.end()) {
    *error = "the document has no opcode " + mnemonic;
    return false;
  }
  const OpSpec& op = it->second;
  int64_t field[3] = {0, 0, 0};
  for (int i = 0; i < 3; ++i) {
    if (op.operands[i] == "-") continue;
    if (!(in >> field[i])) {
      *error = "missing operand in: " + line;
      return false;
    }
  }
  std::string rest;
  if (in >> rest) {
    *error = "too many operands in: " + line;
    return false;
  }
  // "Words": opcode bits 0-7, A bits 8-15; ABC: B bits 16-23, C bits 24-31; ABx: Bx bits 16-31;
  // AsBx: sBx in bits 16-31, two's complement.
  uint32_t w = op.number | static_cast<uint32_t>(field[0] & 0xff) << 8;
  if (op.format == "ABC") {
    w |= static_cast<uint32_t>(field[1] & 0xff) << 16 | static_cast<uint32_t>(field[2] & 0xff)
                                                            << 24;
  } else if (op.format == "ABx" || op.format == "AsBx") {
    w |= static_cast<uint32_t>(field[1] & 0xffff) << 16;
  } else {
    *error = "unknown format " + op.format;
    return false;
  }
  *word = w;
  return true;
}

// ---- canonical bytes: the "Canonical bytes (hashed)" table, row by row ----

// What to write for each field, by the field's name in the table. Lists are pre-encoded items.
struct FunctionSpec {
  std::map<std::string, uint64_t> scalars;
  std::map<std::string, std::vector<Bytes>> lists;
  std::map<std::string, Bytes> singles;  // a field whose encoding is one `type`
};

bool WriteCanonical(const std::string& doc, const FunctionSpec& f, Bytes* out, std::string* error) {
  shapex_testing::MarkdownTable t = shapex_testing::TableAfter(doc, "## Canonical bytes (hashed)");
  int field_col = t.Column("field"), encoding_col = t.Column("encoding");
  if (field_col < 0 || encoding_col < 0 || t.rows.empty()) {
    *error = "no canonical-bytes table with columns field and encoding";
    return false;
  }
  for (const auto& row : t.rows) {
    const std::string& field = row[field_col];
    const std::string& enc = row[encoding_col];
    auto width = [](const std::string& type) {
      return type == "u8" ? 1 : type == "u16" ? 2 : type == "u32" ? 4 : type == "u64" ? 8 : 0;
    };
    if (enc.rfind("4 bytes `", 0) == 0) {  // 4 bytes `SXFN`
      std::string magic = enc.substr(9, 4);
      out->insert(out->end(), magic.begin(), magic.end());
    } else if (enc.find(" = ") != std::string::npos && width(enc.substr(0, enc.find(' '))) > 0) {
      // "u16 = 1": a constant
      PutLe(out, std::stoull(enc.substr(enc.find(" = ") + 3)), width(enc.substr(0, enc.find(' '))));
    } else if (width(enc) > 0) {
      auto it = f.scalars.find(field);
      if (it == f.scalars.end()) {
        *error = "no value for field " + field;
        return false;
      }
      PutLe(out, it->second, width(enc));
    } else if (enc.rfind("u32 count", 0) == 0) {
      auto it = f.lists.find(field);
      static const std::vector<Bytes> kEmpty;
      const std::vector<Bytes>& items = it == f.lists.end() ? kEmpty : it->second;
      PutLe(out, items.size(), 4);
      for (const Bytes& item : items) out->insert(out->end(), item.begin(), item.end());
    } else if (enc == "type") {
      auto it = f.singles.find(field);
      if (it == f.singles.end()) {
        *error = "no value for field " + field;
        return false;
      }
      out->insert(out->end(), it->second.begin(), it->second.end());
    } else {
      *error = "the test cannot read the encoding '" + enc + "' of field " + field;
      return false;
    }
  }
  return true;
}

// `add` as the document describes it.
bool AssembleAdd(const std::string& doc, Bytes* canonical, std::string* error) {
  std::map<std::string, OpSpec> ops = DocumentedOpcodes(doc);
  if (ops.empty()) {
    *error = "no opcode table";
    return false;
  }
  // a and b are registers 0 and 1 (parameters come first); the sum goes to register 2.
  FunctionSpec f;
  for (const char* line : {"ADD 2 0 1", "CHECKRET 2", "RET 2"}) {
    uint32_t word;
    if (!Assemble(ops, line, &word, error)) return false;
    Bytes b;
    PutLe(&b, word, 4);
    f.lists["code"].push_back(b);
  }
  f.scalars = {{"num_params", 2},
               {"num_required", 2},
               {"num_regs", 3},
               // flags: bit 1 has return annotation, bit 2 @remote
               {"flags", 2 | 4},
               {"group_size", 1},
               {"group_index", 0}};
  const Bytes kInt = {1};  // `type` kind 1 = int, no payload
  f.lists["param types"] = {kInt, kInt};
  f.singles["return type"] = kInt;
  return WriteCanonical(doc, f, canonical, error);
}

TEST(SpecAssembleAddTest, HandAssembledAddHasTheHashShapexPrints) {
  std::string doc = ReadDoc();
  Bytes canonical;
  std::string error;
  ASSERT_TRUE(AssembleAdd(doc, &canonical, &error)) << error;
  CommandResult hash =
      RunCommand(std::string(SHAPEX_BIN) + " hash " + Quote(SHAPEX_ADD_SHAPE) + " add");
  ASSERT_EQ(hash.status, 0) << hash.out;
  EXPECT_EQ(Sha256Hex(canonical) + "\n", hash.out);
}

// The worked example in the document agrees with the assembler (and so with shapex).
TEST(SpecAssembleAddTest, DocumentedExampleBytesAreTheAssembledOnes) {
  std::string doc = ReadDoc();
  Bytes canonical;
  std::string error;
  ASSERT_TRUE(AssembleAdd(doc, &canonical, &error)) << error;
  // The example lists the bytes as hex pairs, 16 to a line, each line followed by a comment.
  size_t at = doc.find("53 58 46 4e 01 00 02 00");
  ASSERT_NE(at, std::string::npos) << "no example bytes in the document";
  std::istringstream lines(doc.substr(at));
  std::string line;
  Bytes listed;
  while (listed.size() < canonical.size() && std::getline(lines, line)) {
    std::istringstream words(line);
    std::string w;
    while (words >> w && w.size() == 2 && std::isxdigit(static_cast<unsigned char>(w[0])) &&
           std::isxdigit(static_cast<unsigned char>(w[1]))) {
      listed.push_back(static_cast<uint8_t>(std::stoul(w, nullptr, 16)));
    }
  }
  EXPECT_EQ(Hex(listed.data(), listed.size()), Hex(canonical.data(), canonical.size()));
  EXPECT_NE(doc.find(Sha256Hex(canonical)), std::string::npos)
      << "the document's example hash is not " << Sha256Hex(canonical);
}

// ---- the envelope: "Transport / disk envelope", read from `shapex cache cat` ----

class EnvelopeReader {
 public:
  explicit EnvelopeReader(const std::string& bytes) : in_(bytes) {}
  bool Take(size_t n, std::string* out) {
    if (in_.size() - pos_ < n) return false;
    *out = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool U(int width, uint64_t* v) {
    std::string b;
    if (!Take(static_cast<size_t>(width), &b)) return false;
    *v = 0;
    for (int i = 0; i < width; ++i)
      *v |= static_cast<uint64_t>(static_cast<uint8_t>(b[i])) << (8 * i);
    return true;
  }
  bool Str(std::string* s) {
    uint64_t n;
    return U(4, &n) && Take(n, s);
  }
  bool done() const { return pos_ == in_.size(); }

 private:
  std::string in_;
  size_t pos_ = 0;
};

TEST(SpecAssembleAddTest, CacheCatGivesTheDocumentedEnvelope) {
  std::string doc = ReadDoc();
  Bytes canonical;
  std::string error;
  ASSERT_TRUE(AssembleAdd(doc, &canonical, &error)) << error;
  std::string hash = Sha256Hex(canonical);

  char tmpl[] = "/tmp/spec_assemble_add.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  std::string bin = SHAPEX_BIN;
  CommandResult add =
      RunCommand(bin + " cache add " + Quote(SHAPEX_ADD_SHAPE) + " --dir " + Quote(dir + "/store"));
  ASSERT_EQ(add.status, 0) << add.out;
  CommandResult cat = RunCommand(bin + " cache cat " + hash + " --dir " + Quote(dir + "/store"));
  std::filesystem::remove_all(dir);
  ASSERT_EQ(cat.status, 0);

  shapex_testing::MarkdownTable t = shapex_testing::TableAfter(doc, "## Transport / disk envelope");
  int field_col = t.Column("field"), encoding_col = t.Column("encoding");
  ASSERT_GE(field_col, 0);
  ASSERT_GE(encoding_col, 0);
  ASSERT_FALSE(t.rows.empty());
  EnvelopeReader r(cat.out);
  std::map<std::string, std::vector<std::string>> got;  // field -> its items
  for (const auto& row : t.rows) {
    const std::string& field = row[field_col];
    const std::string& enc = row[encoding_col];
    std::string s;
    uint64_t n = 0;
    if (enc.rfind("4 bytes `", 0) == 0) {
      ASSERT_TRUE(r.Take(4, &s)) << field;
      EXPECT_EQ(s, enc.substr(9, 4)) << field;
    } else if (enc.rfind("u16 = ", 0) == 0) {
      ASSERT_TRUE(r.U(2, &n)) << field;
      EXPECT_EQ(n, std::stoull(enc.substr(6))) << field;
    } else if (enc == "hash") {
      ASSERT_TRUE(r.Take(32, &s)) << field;
      got[field] = {Hex(reinterpret_cast<const uint8_t*>(s.data()), 32)};
    } else if (enc.rfind("u32 length + bytes", 0) == 0) {
      ASSERT_TRUE(r.Str(&s)) << field;
      got[field] = {s};
    } else if (enc == "str") {
      ASSERT_TRUE(r.Str(&s)) << field;
      got[field] = {s};
    } else if (enc.rfind("u32 n, then ", 0) == 0) {
      ASSERT_TRUE(r.U(4, &n)) << field;
      ASSERT_LE(n, 1000u) << field;
      std::string item = enc.substr(12);
      for (uint64_t i = 0; i < n; ++i) {
        if (item.rfind("`hash`", 0) == 0) {
          ASSERT_TRUE(r.Take(32, &s)) << field;
        } else if (item.rfind("`str`", 0) == 0) {
          ASSERT_TRUE(r.Str(&s)) << field;
        } else if (item.rfind("u32", 0) == 0) {
          uint64_t v;
          ASSERT_TRUE(r.U(4, &v)) << field;
          s = std::to_string(v);
        } else {
          FAIL() << "the test cannot read the items '" << item << "' of " << field;
        }
        got[field].push_back(s);
      }
    } else {
      FAIL() << "the test cannot read the encoding '" << enc << "' of field " << field;
    }
  }
  EXPECT_TRUE(r.done()) << "bytes after the last documented field";
  EXPECT_EQ(got["claimed hash"], std::vector<std::string>{hash});
  ASSERT_EQ(got["canonical bytes"].size(), 1u);
  EXPECT_EQ(got["canonical bytes"][0], std::string(canonical.begin(), canonical.end()));
  EXPECT_TRUE(got["group"].empty());  // a single function
  EXPECT_EQ(got["name"], std::vector<std::string>{"add"});
  EXPECT_EQ(got["line table"].size(), 3u);  // one line per code word
  EXPECT_EQ(got["parameter names"], (std::vector<std::string>{"a", "b"}));
}

}  // namespace
