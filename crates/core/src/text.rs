//! Turning vendor HTML into the plain `text` every message carries.

/// Whether `s` looks like HTML (has a tag).
pub fn looks_like_html(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes
        .windows(2)
        .any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || w[1] == b'/'))
        && s.contains('>')
}

/// Plain text from HTML: tags dropped, block ends as line breaks, common entities decoded.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let tag = rest[start + 1..start + end].trim().to_ascii_lowercase();
        let name = tag
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        let closes_block = tag.starts_with('/')
            && matches!(
                name,
                "p" | "div" | "li" | "h1" | "h2" | "h3" | "h4" | "tr" | "blockquote"
            );
        if name == "br" || closes_block {
            out.push('\n');
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    let decoded = decode_entities(&out);
    let lines: Vec<&str> = decoded
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.join("\n")
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp..];
        let end = after.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let entity = &after[1..e];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "nbsp" => Some(' '),
                _ => entity
                    .strip_prefix("#x")
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            }?;
            Some((c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &after[len..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_tags_and_decodes_entities() {
        assert_eq!(html_to_text("<p>Hello!</p>"), "Hello!");
        assert_eq!(
            html_to_text(
                "<p>Your <strong>order</strong> &amp; more</p><ul><li>One</li><li>Two</li></ul>"
            ),
            "Your order & more\nOne\nTwo"
        );
        assert_eq!(html_to_text("a<br/>b &#233; &#x1F600;"), "a\nb é 😀");
        assert_eq!(html_to_text("5 < 6 & 7"), "5 < 6 & 7");
        assert!(looks_like_html("<p>x</p>"));
        assert!(!looks_like_html("5 < 6 > 4"));
    }
}
