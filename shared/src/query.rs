//! A query string's parameters: one type for everyone who reads them — the router and the download
//! parser, the refusal of unimplemented subresources, the signature verifiers and the access log.
//! Each reader picks the decoding its protocol means; the raw text stays at hand for those that
//! must keep it as sent (signatures, the log's redaction).

use crate::{Error, Result};
use percent_encoding::percent_decode_str;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// One `name[=value]` pair of a query string, as sent (percent-encoded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param<'a> {
    /// The pair as sent, `=` and all.
    pub raw: &'a str,
    /// The name as sent.
    pub raw_name: &'a str,
    /// The value as sent; "" for a name without `=`.
    pub raw_value: &'a str,
}

impl<'a> Param<'a> {
    /// The name percent-decoded, `+` kept (as signers and COS's rules mean it); bytes that are not
    /// UTF-8 replaced.
    pub fn name(&self) -> Cow<'a, str> {
        percent_decode_str(self.raw_name).decode_utf8_lossy()
    }

    /// The value percent-decoded, `+` kept; bytes that are not UTF-8 replaced.
    pub fn value(&self) -> Cow<'a, str> {
        percent_decode_str(self.raw_value).decode_utf8_lossy()
    }

    /// The name percent-decoded, `+` kept, refused unless it is UTF-8: a rule is read from it.
    pub fn name_utf8(&self) -> Result<Cow<'a, str>> {
        percent_decode_str(self.raw_name)
            .decode_utf8()
            .map_err(|_| {
                Error::invalid("the query string is not valid UTF-8 after percent-decoding")
            })
    }

    /// Name and value as a form reads them (`+` a space, as S3 reads `prefix`, `uploadId`,
    /// `response-*`, …).
    pub fn form(&self) -> (String, String) {
        let decode = |s: &str| {
            percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        (decode(self.raw_name), decode(self.raw_value))
    }
}

/// The parameters of `query` in the order sent, duplicates kept, empty pairs (`a&&b`) skipped.
pub fn params(query: Option<&str>) -> impl Iterator<Item = Param<'_>> {
    (query.unwrap_or("").split('&'))
        .filter(|p| !p.is_empty())
        .map(|raw| {
            let (raw_name, raw_value) = raw.split_once('=').unwrap_or((raw, ""));
            Param {
                raw,
                raw_name,
                raw_value,
            }
        })
}

/// The parameters as a form reads them ([`Param::form`]), by name; of a name sent twice, the last.
pub fn form(query: Option<&str>) -> BTreeMap<String, String> {
    params(query).map(|p| p.form()).collect()
}

/// Whether `query` has a parameter of that (form-decoded) name.
pub fn has(query: Option<&str>, name: &str) -> bool {
    params(query).any(|p| p.form().0 == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pair_read_each_way() {
        let q = Some("a+b%2Bc=d+e%20f&flag&&empty=&x=%FF");
        let all: Vec<Param> = params(q).collect();
        assert_eq!(all.len(), 4, "the empty pair is skipped");
        assert_eq!(all[0].raw, "a+b%2Bc=d+e%20f");
        assert_eq!(
            (all[0].name(), all[0].value()),
            ("a+b+c".into(), "d+e f".into())
        );
        assert_eq!(all[0].form(), ("a b+c".into(), "d e f".into()));
        assert_eq!((all[1].raw_name, all[1].raw_value), ("flag", ""));
        assert_eq!((all[2].raw_name, all[2].raw_value), ("empty", ""));
        assert_eq!(all[3].value(), "\u{FFFD}");
        let bad = Param {
            raw: "%FF",
            raw_name: "%FF",
            raw_value: "",
        };
        assert!(bad.name_utf8().is_err());
        assert_eq!(all[0].name_utf8().unwrap(), "a+b+c");
    }

    #[test]
    fn form_map_and_presence() {
        let q = Some("uploadId=1&prefix=a+b&uploadId=2&uploads");
        let map = form(q);
        assert_eq!(map["uploadId"], "2", "the last of a repeated name");
        assert_eq!(map["prefix"], "a b");
        assert_eq!(map["uploads"], "");
        assert!(has(q, "uploads") && !has(q, "delete") && !has(None, "uploads"));
        assert_eq!(params(None).count(), 0);
    }
}
