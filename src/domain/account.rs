//! The rules of an account's own fields: email and display name.

use unicode_normalization::UnicodeNormalization;
use unicode_security::MixedScript;

use crate::domain::vars::valid_role;
use crate::primitives::error::Error;

/// Unicode's default-ignorable code points (`Default_Ignorable_Code_Point` of
/// DerivedCoreProperties.txt): characters that render as nothing, such as the zero-width space
/// and joiners, the soft hyphen, bidi controls, variation selectors and tags.
const DEFAULT_IGNORABLE: &[(char, char)] = &[
    ('\u{ad}', '\u{ad}'),
    ('\u{34f}', '\u{34f}'),
    ('\u{61c}', '\u{61c}'),
    ('\u{115f}', '\u{1160}'),
    ('\u{17b4}', '\u{17b5}'),
    ('\u{180b}', '\u{180f}'),
    ('\u{200b}', '\u{200f}'),
    ('\u{202a}', '\u{202e}'),
    ('\u{2060}', '\u{206f}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{fe00}', '\u{fe0f}'),
    ('\u{feff}', '\u{feff}'),
    ('\u{ffa0}', '\u{ffa0}'),
    ('\u{fff0}', '\u{fff8}'),
    ('\u{1bca0}', '\u{1bca3}'),
    ('\u{1d173}', '\u{1d17a}'),
    ('\u{e0000}', '\u{e0fff}'),
];

fn default_ignorable(c: char) -> bool {
    DEFAULT_IGNORABLE
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// An email's one spelling: default-ignorable code points removed, NFKC (so full-width,
/// ligature and other compatibility forms become the plain letters they stand for), lower case
/// (then NFKC again, which lower-casing can undo), trimmed.
fn fold_email(raw: &str) -> String {
    let visible: String = raw.chars().filter(|&c| !default_ignorable(c)).collect();
    let lower = visible.nfkc().collect::<String>().to_lowercase();
    let folded: String = lower.nfkc().filter(|&c| !default_ignorable(c)).collect();
    folded.trim().to_string()
}

/// Normalizes an email (see `fold_email`: invisible characters dropped, NFKC, lower case,
/// trimmed) and checks its shape. Two inputs that look the same but for invisible characters,
/// compatibility forms or letter case give the same address, so login finds the account however
/// it is typed. Creating an account also needs [`new_account_email`].
pub fn normalize_email(raw: &str) -> Result<String, Error> {
    let email = fold_email(raw);
    let valid = email.chars().count() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if valid {
        Ok(email)
    } else {
        Err(Error::BadRequest("email: not a valid email address".into()))
    }
}

/// The email of an account being created (registration, the admin API, the CLI):
/// [`normalize_email`], and each part single-script (UTS #39): the local part and every label
/// of the domain must not mix scripts, so `lоck@example.com` with a Cyrillic `о` cannot pass
/// for `lock@example.com`. Digits and punctuation go with any script; Han goes with Hiragana and
/// Katakana (Japanese), Hangul (Korean) and Bopomofo; `иван@пример.com` is fine.
pub fn new_account_email(raw: &str) -> Result<String, Error> {
    let email = normalize_email(raw)?;
    let (local, domain) = email.split_once('@').unwrap_or_default();
    if !local.is_single_script() || !domain.split('.').all(MixedScript::is_single_script) {
        return Err(Error::BadRequest(
            "email: mixes scripts (such as Latin and Cyrillic) within its local part or a domain label"
                .into(),
        ));
    }
    Ok(email)
}

/// How emails were stored before [`normalize_email`] folded Unicode (trimmed and lower-cased
/// only), when that differs from the normal form: the spelling an older account may still be
/// stored under, for login and the CLI to look up when the normal form finds nothing.
pub fn legacy_email(raw: &str) -> Option<String> {
    let legacy = raw.trim().to_lowercase();
    (fold_email(raw) != legacy).then_some(legacy)
}

/// Checks a display name: at most 200 characters, no control characters; blank means none.
pub fn normalize_name(raw: Option<&str>) -> Result<Option<String>, Error> {
    let Some(name) = raw.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(Error::BadRequest(
            "name: at most 200 characters, no control characters".into(),
        ));
    }
    Ok(Some(name.to_string()))
}

/// Most roles one account holds.
pub const MAX_ROLES: usize = 32;

/// An account's roles: 1–64 of `a-z 0-9 _ - .` each, never `anonymous` (the role of no
/// caller), each once in the order given, at most [`MAX_ROLES`].
pub fn role_list<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        if !valid_role(name) || name == "anonymous" {
            return Err(Error::BadRequest(format!(
                "roles: {name:?} is not a role name (1-64 of a-z 0-9 _ - ., not \"anonymous\")"
            )));
        }
        if !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
    }
    if out.len() > MAX_ROLES {
        return Err(Error::BadRequest(format!("roles: at most {MAX_ROLES}")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_characters_and_compatibility_forms_fold_away() {
        let plain = "lock@example.com";
        for raw in [
            "lock@example.com",
            "  LOCK@Example.COM ",
            "lo\u{200b}ck@example.com",
            "\u{feff}lock@exam\u{ad}ple.com\u{2060}",
            "lock\u{200d}@example\u{200c}.com",
            "lo\u{202e}ck@example.com",
            "lock@example.com\u{fe0f}",
            "lock@example.com\u{e0041}",
            "ｌｏｃｋ＠ｅｘａｍｐｌｅ．ｃｏｍ",
            "LOCK@EXAMPLE.COM",
        ] {
            assert_eq!(normalize_email(raw).as_deref(), Ok(plain), "{raw:?}");
            assert_eq!(new_account_email(raw).as_deref(), Ok(plain), "{raw:?}");
        }
        // Composed and decomposed accents are one address; ligatures are their letters.
        let composed = normalize_email("jos\u{e9}@example.com").unwrap();
        assert_eq!(
            normalize_email("jose\u{301}@example.com").unwrap(),
            composed
        );
        assert_eq!(
            normalize_email("\u{fb01}x@example.com").unwrap(),
            "fix@example.com"
        );
        // Folding is stable: a normalized email normalizes to itself.
        for raw in [
            "İstanbul@example.com",
            "ǅ@example.com",
            "Straße@example.com",
            "ﬃ@x.y",
        ] {
            let once = normalize_email(raw).unwrap();
            assert_eq!(normalize_email(&once).unwrap(), once, "{raw:?}");
        }
    }

    #[test]
    fn what_is_left_after_folding_must_still_be_an_address() {
        for raw in [
            "\u{200b}@example.com",
            "lock@\u{200b}",
            "lock\u{ff20}a@example.com",
            "lock@example.com\u{3000}x",
            "\u{3164}@example.com",
        ] {
            assert!(normalize_email(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn mixed_script_look_alikes_cannot_be_created() {
        for raw in [
            "l\u{43e}ck@example.com",   // Cyrillic о
            "lock@\u{435}xample.com",   // Cyrillic е in the domain
            "\u{3b1}lice@example.com",  // Greek α
            "paypa\u{4cf}@example.com", // Cyrillic ӏ
            "lock@exa\u{43c}ple.com",   // Cyrillic м
        ] {
            let err = new_account_email(raw).unwrap_err();
            assert_eq!(err.code(), "bad_request", "{raw:?}");
            assert!(err.public_message().contains("mixes scripts"), "{raw:?}");
            // Login still reads them (and finds no such account).
            assert!(normalize_email(raw).is_ok(), "{raw:?}");
        }
        for raw in [
            "иван@пример.рф",
            "иван@example.com",
            "ivan@пример.com",
            "ivan.petrov+2@example.com",
            "δοκιμή@παράδειγμα.δοκιμή",
            "山田太郎@例え.jp",
            "やまだタロウ山田@example.jp",
            "홍길동@예시.kr",
            "user123@example.com",
            "jos\u{e9}@example.com",
        ] {
            assert!(new_account_email(raw).is_ok(), "{raw:?}");
        }
    }

    #[test]
    fn legacy_spellings_are_offered_only_when_folding_changed_something() {
        assert_eq!(legacy_email(" Ada@Example.com "), None);
        assert_eq!(
            legacy_email("ada\u{200b}@example.com").as_deref(),
            Some("ada\u{200b}@example.com")
        );
    }

    #[test]
    fn an_email_is_at_most_254_characters_whatever_their_bytes() {
        let at = "@example.com";
        let local = |n: usize, c: char| std::iter::repeat_n(c, n).collect::<String>();
        assert!(normalize_email(&format!("{}{at}", local(254 - at.len(), 'a'))).is_ok());
        assert!(normalize_email(&format!("{}{at}", local(255 - at.len(), 'a'))).is_err());
        assert!(normalize_email(&format!("{}{at}", local(254 - at.len(), 'é'))).is_ok());
        assert!(normalize_email(&format!("{}{at}", local(255 - at.len(), 'é'))).is_err());
    }
}
