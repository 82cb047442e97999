// A small JSON reader and string escaper for the evaluation's task files and results.
// Enough of RFC 8259 for data files: objects, arrays, strings (with \u escapes, surrogate
// pairs), numbers, true/false/null; nesting depth and input size are bounded.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace amskv {
namespace json {

struct Value {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<Value> arr;
  std::map<std::string, Value> obj;

  const Value* get(const std::string& key) const;  // object member or nullptr
};

// Parses one JSON text (surrounding whitespace allowed). false + err with the byte offset.
bool parse(const std::string& text, Value* out, std::string* err);

// s as a JSON string literal, quotes included; invalid UTF-8 is passed through bytewise.
std::string quote(const std::string& s);

// v as compact JSON text (numbers with 17 significant digits).
std::string dump(const Value& v);

}  // namespace json
}  // namespace amskv
