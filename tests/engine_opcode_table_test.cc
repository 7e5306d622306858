// docs/blob-format.md ("Instruction encoding") against the engine's opcode table
// (SHAPEX_OPCODES): the same numbers, mnemonics, formats and operand kinds, every opcode once;
// the versions the document states; and the rule the document gives a hand assembler, that the
// compiler writes 0 in every unused field. The doc is read at test time (SHAPEX_BLOB_FORMAT_MD),
// so editing either side alone fails here.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "opcode_info.h"
#include "shapex/engine/blob.h"
#include "shapex/engine/compiler.h"
#include "shapex/engine/opcodes.h"
#include "shapex/engine/program.h"
#include "testing/markdown_table.h"

namespace shapex::engine {
namespace {

// One row of the table, as the document or the X-macro says it.
struct OpRow {
  std::string number;
  std::string mnemonic;
  std::string format;
  std::string a, b, c, extra;
};

// The engine's side, stringized straight from the X-macro's columns.
std::vector<OpRow> CodeRows() {
  std::vector<OpRow> rows;
#define SHAPEX_OP_ROW(name, fmt, a, b, c, x, doc) \
  rows.push_back(OpRow{std::to_string(rows.size()), #name, #fmt, #a, #b, #c, #x});
  SHAPEX_OPCODES(SHAPEX_OP_ROW)
#undef SHAPEX_OP_ROW
  return rows;
}

// The document's side; errors name a row the table cannot be read from.
std::vector<OpRow> DocRows(const std::string& doc, std::vector<std::string>* errors) {
  shapex_testing::MarkdownTable t = shapex_testing::TableAfter(doc, "### Opcodes");
  const char* const kColumns[] = {"#", "mnemonic", "format", "A", "B", "C", "extra"};
  int col[7];
  for (int i = 0; i < 7; ++i) {
    col[i] = t.Column(kColumns[i]);
    if (col[i] < 0)
      errors->push_back(fmt::format("the opcode table has no column '{}'", kColumns[i]));
  }
  std::vector<OpRow> rows;
  if (!errors->empty()) return rows;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const std::vector<std::string>& cells = t.rows[r];
    if (cells.size() != t.header.size()) {
      errors->push_back(fmt::format("opcode table row {} has {} cells, the header {}", r + 1,
                                    cells.size(), t.header.size()));
      continue;
    }
    rows.push_back(OpRow{cells[col[0]], cells[col[1]], cells[col[2]], cells[col[3]], cells[col[4]],
                         cells[col[5]], cells[col[6]]});
  }
  return rows;
}

// Every way the document's table differs from the code's (empty: they agree).
std::vector<std::string> CompareTables(const std::vector<OpRow>& doc,
                                       const std::vector<OpRow>& code) {
  std::vector<std::string> errors;
  std::map<std::string, int> seen_numbers, seen_names;
  for (const OpRow& d : doc) {
    ++seen_numbers[d.number];
    ++seen_names[d.mnemonic];
  }
  for (const auto& [name, count] : seen_names)
    if (count > 1) errors.push_back(fmt::format("{} is listed {} times", name, count));
  for (const auto& [number, count] : seen_numbers)
    if (count > 1) errors.push_back(fmt::format("number {} is listed {} times", number, count));
  std::map<std::string, const OpRow*> doc_by_name;
  for (const OpRow& d : doc) doc_by_name.emplace(d.mnemonic, &d);
  std::set<std::string> code_names;
  for (const OpRow& c : code) {
    code_names.insert(c.mnemonic);
    auto it = doc_by_name.find(c.mnemonic);
    if (it == doc_by_name.end()) {
      errors.push_back(
          fmt::format("{} (opcode {}) is missing from the document", c.mnemonic, c.number));
      continue;
    }
    const OpRow& d = *it->second;
    auto check = [&](const char* what, const std::string& doc_value,
                     const std::string& code_value) {
      if (doc_value != code_value)
        errors.push_back(fmt::format("{}: the document says {} '{}', the code '{}'", c.mnemonic,
                                     what, doc_value, code_value));
    };
    check("number", d.number, c.number);
    check("format", d.format, c.format);
    check("operand A", d.a, c.a);
    check("operand B", d.b, c.b);
    check("operand C", d.c, c.c);
    check("extra", d.extra, c.extra);
  }
  for (const OpRow& d : doc)
    if (code_names.count(d.mnemonic) == 0)
      errors.push_back(
          fmt::format("the document lists {}, which the code does not have", d.mnemonic));
  return errors;
}

std::string ReadDoc() {
  std::string doc;
  EXPECT_TRUE(shapex_testing::ReadTextFile(SHAPEX_BLOB_FORMAT_MD, &doc))
      << "cannot read " << SHAPEX_BLOB_FORMAT_MD;
  return doc;
}

std::string Joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += "  " + l + "\n";
  return out;
}

TEST(OpcodeTableTest, DocumentMatchesTheXMacro) {
  std::string doc = ReadDoc();
  std::vector<std::string> errors;
  std::vector<OpRow> rows = DocRows(doc, &errors);
  ASSERT_TRUE(errors.empty()) << Joined(errors);
  EXPECT_EQ(rows.size(), static_cast<size_t>(kNumOps));
  std::vector<std::string> diff = CompareTables(rows, CodeRows());
  EXPECT_TRUE(diff.empty()) << "docs/blob-format.md and SHAPEX_OPCODES disagree:\n" << Joined(diff);
  // The table is in opcode order, so it reads like the enum.
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(rows[i].number, std::to_string(i));
}

// The comparison itself: any edit of one side is caught.
TEST(OpcodeTableTest, ComparisonCatchesEveryKindOfDifference) {
  const std::vector<OpRow> code = CodeRows();
  ASSERT_GT(code.size(), 2u);
  EXPECT_TRUE(CompareTables(code, code).empty());

  auto differs = [&](const std::vector<OpRow>& doc) { return !CompareTables(doc, code).empty(); };
  std::vector<OpRow> doc = code;
  std::swap(doc[0].number, doc[1].number);  // two opcodes renumbered
  EXPECT_TRUE(differs(doc));
  doc = code;
  doc.pop_back();  // one missing
  EXPECT_TRUE(differs(doc));
  doc = code;
  doc.push_back(doc[0]);  // one twice
  EXPECT_TRUE(differs(doc));
  doc = code;
  doc.push_back(OpRow{std::to_string(code.size()), "FROB", "ABC", "R", "-", "-", "-"});
  EXPECT_TRUE(differs(doc));  // one the code lacks
  doc = code;
  doc[2].format = doc[2].format == "ABC" ? "ABx" : "ABC";
  EXPECT_TRUE(differs(doc));
  for (std::string OpRow::*field : {&OpRow::a, &OpRow::b, &OpRow::c, &OpRow::extra}) {
    doc = code;
    doc[3].*field = doc[3].*field == "-" ? "R" : "-";
    EXPECT_TRUE(differs(doc));
  }
  doc = code;
  doc[4].mnemonic += "X";  // renamed
  EXPECT_TRUE(differs(doc));
}

// A row the parser cannot split into the header's cells is reported, not skipped silently.
TEST(OpcodeTableTest, MalformedDocumentTableIsReported) {
  std::string doc =
      "### Opcodes\n\n| # | mnemonic | format | A | B | C | extra | meaning |\n"
      "|---|---|---|---|---|---|---|---|\n| 0 | `MOVE` | ABC | R | R |\n";
  std::vector<std::string> errors;
  DocRows(doc, &errors);
  EXPECT_FALSE(errors.empty());
  errors.clear();
  DocRows("no table here\n", &errors);
  EXPECT_FALSE(errors.empty());
}

// "| format version | u16 = 1 |" and the VM version in the canonical-bytes table, and the
// opcode bound in the text, are the engine's.
TEST(OpcodeTableTest, DocumentStatesTheEngineVersionsAndOpcodeCount) {
  std::string doc = ReadDoc();
  shapex_testing::MarkdownTable t = shapex_testing::TableAfter(doc, "## Canonical bytes (hashed)");
  int field = t.Column("field"), encoding = t.Column("encoding");
  ASSERT_GE(field, 0);
  ASSERT_GE(encoding, 0);
  std::map<std::string, std::string> fields;
  for (const auto& row : t.rows)
    if (row.size() == t.header.size()) fields[row[field]] = row[encoding];
  EXPECT_EQ(fields["format version"], fmt::format("u16 = {}", kBlobFormatVersion));
  EXPECT_EQ(fields["VM version"], fmt::format("u16 = {}", kVmVersion));
  EXPECT_NE(doc.find(fmt::format("a number ≥ {} is rejected", kNumOps)), std::string::npos)
      << "the document's opcode bound is not kNumOps = " << kNumOps;
}

// The document tells a hand assembler to write 0 in unused fields, because that is what the
// compiler does and the hash covers every bit. Check it over every golden program.
TEST(OpcodeTableTest, CompilerWritesZeroInEveryUnusedField) {
  namespace fs = std::filesystem;
  size_t programs = 0, words = 0;
  for (const auto& entry : fs::recursive_directory_iterator(SHAPEX_LANG_DIR)) {
    if (entry.path().extension() != ".shape") continue;
    std::string source;
    ASSERT_TRUE(shapex_testing::ReadTextFile(entry.path().string(), &source));
    Diagnostic diag;
    Result<std::unique_ptr<Program>> program = Compile(source, entry.path().string(), &diag);
    if (!program.has_value()) continue;  // the compile-error cases
    ++programs;
    for (const auto& proto : (*program)->protos) {
      const std::vector<uint32_t>& code = proto->code;
      for (size_t pc = 0; pc < code.size(); ++pc) {
        uint32_t word = code[pc];
        uint32_t op = word & 0xff;
        ASSERT_LT(op, static_cast<uint32_t>(kNumOps)) << entry.path();
        const OpInfo& info = kOpInfo[op];
        auto where = [&] {
          return fmt::format("{}: {} at pc {} of {} (word {:#010x})", entry.path().string(),
                             info.name, pc, proto->name, word);
        };
        ++words;
        if (info.a == OperandKind::kUnused) EXPECT_EQ(code::GetA(word), 0u) << where();
        if (info.format == OpFormat::kABC) {
          if (info.b == OperandKind::kUnused) EXPECT_EQ(code::GetB(word), 0u) << where();
          if (info.c == OperandKind::kUnused) EXPECT_EQ(code::GetC(word), 0u) << where();
        } else {
          // Bx / sBx is the B operand; the C column of an ABx/AsBx row is always unused.
          EXPECT_EQ(info.c, OperandKind::kUnused) << where();
          if (info.b == OperandKind::kUnused) EXPECT_EQ(code::GetBx(word), 0u) << where();
        }
        if (info.extra) ++pc;  // the extra word is data, not an instruction
      }
    }
  }
  EXPECT_GT(programs, 100u);
  EXPECT_GT(words, 1000u);
}

}  // namespace
}  // namespace shapex::engine
