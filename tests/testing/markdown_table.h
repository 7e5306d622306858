// Reading the tables of our Markdown specs (docs/*.md) in tests, so a test can check a spec
// against the code, or build bytes from the spec alone. Standard library only: the tests that
// use it must not depend on the engine's headers.
//
// Usage:
//   std::string doc;
//   ASSERT_TRUE(shapex_testing::ReadTextFile(SHAPEX_BLOB_FORMAT_MD, &doc));
//   shapex_testing::MarkdownTable t = shapex_testing::TableAfter(doc, "### Opcodes");
//   for (const auto& row : t.rows) ... row[t.Column("mnemonic")] ...
//
// A table is the first run of lines starting with '|' after the heading and before the next
// heading: a header row, the `|---|` separator, then data rows. Cells are split on '|' except "\|"
// (an escaped pipe, which becomes '|'), trimmed, and have their code backticks removed when a cell
// is one `code span`.
#ifndef SHAPEX_TESTS_TESTING_MARKDOWN_TABLE_H_
#define SHAPEX_TESTS_TESTING_MARKDOWN_TABLE_H_

#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace shapex_testing {

inline bool ReadTextFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream buffer;
  buffer << in.rdbuf();
  *out = buffer.str();
  return !in.bad();
}

inline std::string TrimCell(std::string_view s) {
  size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return "";
  size_t end = s.find_last_not_of(" \t");
  std::string cell(s.substr(begin, end - begin + 1));
  if (cell.size() >= 2 && cell.front() == '`' && cell.back() == '`' &&
      cell.find('`', 1) == cell.size() - 1) {
    cell = cell.substr(1, cell.size() - 2);
  }
  return cell;
}

// The cells of one table line ("| a | b \| c |" -> {"a", "b | c"}).
inline std::vector<std::string> SplitRow(std::string_view line) {
  std::vector<std::string> cells;
  if (line.empty() || line.front() != '|') return cells;
  std::string current;
  for (size_t i = 1; i < line.size(); ++i) {
    char c = line[i];
    if (c == '\\' && i + 1 < line.size() && line[i + 1] == '|') {
      current += '|';
      ++i;
    } else if (c == '|') {
      cells.push_back(TrimCell(current));
      current.clear();
    } else {
      current += c;
    }
  }
  // Text after the last '|' (a row without a closing pipe) is a cell too.
  if (TrimCell(current).size() > 0) cells.push_back(TrimCell(current));
  return cells;
}

struct MarkdownTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  // Index of the header cell named `name`, or -1.
  int Column(std::string_view name) const {
    for (size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return static_cast<int>(i);
    return -1;
  }
};

// The first table after the line that equals `heading` (an empty table if there is none).
inline MarkdownTable TableAfter(std::string_view doc, std::string_view heading) {
  MarkdownTable table;
  std::vector<std::string_view> lines;
  for (size_t pos = 0; pos <= doc.size();) {
    size_t end = doc.find('\n', pos);
    if (end == std::string_view::npos) end = doc.size();
    lines.push_back(doc.substr(pos, end - pos));
    pos = end + 1;
  }
  size_t i = 0;
  while (i < lines.size() && lines[i] != heading) ++i;
  if (i < lines.size()) ++i;
  // Prose may come first; another heading first means the section has no table.
  while (i < lines.size() && (lines[i].empty() || lines[i].front() != '|')) {
    if (!lines[i].empty() && lines[i].front() == '#') return table;
    ++i;
  }
  if (i + 1 >= lines.size()) return table;
  table.header = SplitRow(lines[i]);
  for (i += 2; i < lines.size() && !lines[i].empty() && lines[i].front() == '|'; ++i) {
    table.rows.push_back(SplitRow(lines[i]));
  }
  return table;
}

}  // namespace shapex_testing

#endif  // SHAPEX_TESTS_TESTING_MARKDOWN_TABLE_H_
