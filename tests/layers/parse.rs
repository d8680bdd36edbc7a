//! Reading Rust source as the layer check needs it: comments and literals blanked out, then every path
//! that starts with `crate::` or `super::`, with `use` groups (`{a, b::{c}}`) expanded.

/// `text` with comments, string and character literals blanked out (newlines kept, so lines still count).
pub fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    while i < chars.len() {
        let rest = &chars[i..];
        let end = if rest.starts_with(&['/', '/']) {
            rest.iter().position(|c| *c == '\n').unwrap_or(rest.len())
        } else if rest.starts_with(&['/', '*']) {
            (2..rest.len())
                .find(|&k| rest[k - 2..k] == ['*', '/'])
                .unwrap_or(rest.len())
        } else if rest.starts_with(&['r', '"']) || rest.starts_with(&['r', '#']) {
            raw_string_len(rest)
        } else if rest[0] == '"' {
            let mut k = 1;
            while k < rest.len() && rest[k] != '"' {
                k += if rest[k] == '\\' { 2 } else { 1 };
            }
            (k + 1).min(rest.len())
        } else if rest[0] == '\'' && rest.get(2) == Some(&'\'') {
            3
        } else if rest[0] == '\'' && rest.get(1) == Some(&'\\') {
            (3..rest.len()).find(|&k| rest[k] == '\'').map_or(1, |k| k + 1)
        } else {
            0
        };
        if end == 0 {
            out.push(rest[0]);
            i += 1;
        } else {
            rest[..end].iter().for_each(|c| blank(&mut out, *c));
            i += end;
        }
    }
    out
}

/// The length of the raw string literal `rest` starts with (`r"..."`, `r#"..."#`), or 0 when it is none.
fn raw_string_len(rest: &[char]) -> usize {
    let hashes = rest[1..].iter().take_while(|c| **c == '#').count();
    if rest.get(1 + hashes) != Some(&'"') {
        return 0;
    }
    let close: Vec<char> = std::iter::once('"')
        .chain(std::iter::repeat_n('#', hashes))
        .collect();
    (2 + hashes..rest.len())
        .find(|&k| rest[k..].starts_with(&close))
        .map_or(rest.len(), |k| k + close.len())
}

/// The paths of a use tree starting at `s` (after `crate::`): `a::{b, c::d}` gives `a::b`, `a::c::d`.
pub fn paths(s: &[char]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut prefix = Vec::new();
    let mut i = 0;
    loop {
        let start = i;
        while i < s.len() && (s[i].is_alphanumeric() || s[i] == '_') {
            i += 1;
        }
        if i > start {
            prefix.push(s[start..i].iter().collect::<String>());
        }
        let group = if s[i..].starts_with(&[':', ':', '{']) {
            Some(i + 2)
        } else {
            (prefix.is_empty() && s.get(i) == Some(&'{')).then_some(i)
        };
        if let Some(open) = group {
            let close = matching_brace(s, open);
            for part in split_top(&s[open + 1..close]) {
                out.extend(paths(part).into_iter().map(|p| [prefix.clone(), p].concat()));
            }
            return out;
        }
        if s[i..].starts_with(&[':', ':']) && s.get(i + 2).is_some_and(|c| c.is_alphabetic() || *c == '_') {
            i += 2;
            continue;
        }
        out.push(prefix);
        return out;
    }
}

fn matching_brace(s: &[char], open: usize) -> usize {
    let mut depth = 0;
    for (k, c) in s.iter().enumerate().skip(open) {
        match c {
            '{' => depth += 1,
            '}' if depth == 1 => return k,
            '}' => depth -= 1,
            _ => {}
        }
    }
    s.len()
}

/// The comma-separated parts of a group's inside, nested groups kept whole.
fn split_top(s: &[char]) -> Vec<&[char]> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (k, c) in s.iter().enumerate() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
        .into_iter()
        .map(|p| {
            let skip = p.iter().take_while(|c| c.is_whitespace()).count();
            &p[skip..]
        })
        .filter(|p| !p.is_empty())
        .collect()
}
