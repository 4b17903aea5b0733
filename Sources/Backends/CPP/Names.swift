/// Turns names from a model (untrusted) into C++ identifiers and comment text that cannot
/// break or inject code.
enum CppNames {
    static let keywords: Set<String> = [
        "alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool", "break", "case", "catch",
        "char", "char8_t", "char16_t", "char32_t", "class", "compl", "concept", "const", "consteval", "constexpr",
        "constinit", "const_cast", "continue", "co_await", "co_return", "co_yield", "decltype", "default", "delete",
        "do", "double", "dynamic_cast", "else", "enum", "explicit", "export", "extern", "false", "float", "for",
        "friend", "goto", "if", "inline", "int", "long", "mutable", "namespace", "new", "noexcept", "not", "not_eq",
        "nullptr", "operator", "or", "or_eq", "private", "protected", "public", "register", "reinterpret_cast",
        "requires", "return", "short", "signed", "sizeof", "static", "static_assert", "static_cast", "struct",
        "switch", "template", "this", "thread_local", "throw", "true", "try", "typedef", "typeid", "typename",
        "union", "unsigned", "using", "virtual", "void", "volatile", "wchar_t", "while", "xor", "xor_eq",
        "std", "sofie_rt", "main", "errno", "assert", "NULL", "EOF",
    ]

    /// A C++ identifier made of [A-Za-z0-9_] only, never a keyword, never starting with a digit
    /// or an underscore (reserved), at most 48 characters.
    static func identifier(_ name: String, fallback: String = "v") -> String {
        var s = ""
        for u in name.unicodeScalars {
            if u.isASCII, u.properties.isAlphabetic || ("0"..."9").contains(Character(u)) { s.unicodeScalars.append(u) } else { s += "_" }
        }
        while s.contains("__") { s = s.replacingOccurrences(of: "__", with: "_") }
        s = String(s.drop { $0 == "_" })
        while s.hasSuffix("_") { s.removeLast() }
        if s.count > 48 { s = String(s.prefix(48)) }
        if s.isEmpty { s = fallback }
        if let f = s.first, f.isNumber { s = fallback + "_" + s }
        if keywords.contains(s) { s += "_" + fallback }
        return s
    }

    /// Text safe inside a `//` comment and inside a string literal (the run-time error messages
    /// quote node names): printable ASCII only; line breaks, backslashes (line splices and
    /// escapes), question marks (trigraphs) and double quotes (the literal's end) become '_'.
    static func comment(_ text: String, limit: Int = 80) -> String {
        var s = ""
        for u in text.unicodeScalars {
            if u.isASCII, u.value >= 0x20, u.value < 0x7f, u != "\\", u != "?", u != "\"" { s.unicodeScalars.append(u) } else { s += "_" }
        }
        if s.count > limit { s = String(s.prefix(limit)) + "..." }
        return s
    }
}

import Foundation
