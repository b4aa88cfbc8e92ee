//! The `Pic-Operations` header (cos-api.md): its JSON, and where each rule's `fileid` puts the output.

use crate::store;
use crate::{Error, Result};
use serde::Deserialize;

/// At most this many rules in one Pic-Operations header (COS's limit).
pub const MAX_RULES: usize = 5;

/// The `Pic-Operations` header.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PicOperations {
    #[serde(default)]
    pub is_pic_info: u8,
    #[serde(default)]
    pub rules: Vec<PicRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PicRule {
    pub fileid: String,
    pub rule: String,
    #[serde(default)]
    pub bucket: Option<String>,
}

impl PicOperations {
    /// Parses and validates the header: JSON shape, at most 5 rules, `is_pic_info` 0 or 1.
    pub fn parse(json: &str) -> Result<PicOperations> {
        if json.len() > 64 * 1024 {
            return Err(Error::invalid("Pic-Operations is larger than 64 KiB"));
        }
        let ops: PicOperations = serde_json::from_str(json).map_err(|e| {
            Error::invalid(format!(
                "Pic-Operations is not valid JSON of the form {{\"is_pic_info\":1,\"rules\":[{{\"fileid\":\"out.heic\",\"rule\":\"imageMogr2/format/heif\"}}]}}: {e}"
            ))
        })?;
        if ops.is_pic_info > 1 {
            return Err(Error::invalid("Pic-Operations is_pic_info must be 0 or 1"));
        }
        if ops.rules.len() > MAX_RULES {
            return Err(Error::invalid(format!(
                "Pic-Operations has {} rules; at most {MAX_RULES} are allowed",
                ops.rules.len()
            )));
        }
        Ok(ops)
    }
}

/// Resolves a rule's `fileid` against the input key (cos-api.md): a leading `/` is absolute (from the
/// bucket root), anything else is relative to the input's folder. The result must be a valid key
/// ([`store::check_key`]); a trailing `/` is refused with its own hint.
pub fn resolve_fileid(input_key: &str, fileid: &str) -> Result<String> {
    // COS documents fileids as URL-encoded: `%E7%85%A7.heic` names `照.heic`.
    let decoded = percent_encoding::percent_decode_str(fileid)
        .decode_utf8()
        .map_err(|_| {
            Error::invalid(format!(
                "fileid {:?} is not valid UTF-8 once percent-decoded",
                truncate(fileid, 80)
            ))
        })?;
    let fileid = decoded.as_ref();
    let bad = |why: &str| {
        Error::invalid(format!(
            "fileid {:?} is invalid: {why}",
            truncate(fileid, 80)
        ))
    };
    if fileid.is_empty() {
        return Err(bad("it is empty"));
    }
    if fileid.ends_with('/') {
        return Err(bad(
            "it ends with / (name the output file, e.g. folder/out.heic)",
        ));
    }
    let key = match fileid.strip_prefix('/') {
        Some(absolute) => absolute.to_string(),
        None => {
            let folder = input_key.rfind('/').map_or("", |i| &input_key[..=i]);
            format!("{folder}{fileid}")
        }
    };
    match store::key_problem(&key) {
        Some(why) => Err(bad(why)),
        None => Ok(key),
    }
}

fn truncate(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fileid_rules_of_cos() {
        assert_eq!(resolve_fileid("p1/a.jpg", "/p2/x.jpg").unwrap(), "p2/x.jpg");
        assert_eq!(
            resolve_fileid("p1/a.jpg", "p2/x.jpg").unwrap(),
            "p1/p2/x.jpg"
        );
        assert_eq!(resolve_fileid("a.jpg", "x.heic").unwrap(), "x.heic");
        assert_eq!(resolve_fileid("p1/a.jpg", "a.jpg").unwrap(), "p1/a.jpg"); // overwrites the original
        for bad in [
            "",
            "out/",
            "/",
            "a//b.jpg",
            "../x.jpg",
            "a/../../x",
            "./x",
            "a\u{0}b",
            "a\\b",
        ] {
            assert!(resolve_fileid("p1/a.jpg", bad).is_err(), "{bad:?}");
        }
        assert!(resolve_fileid("a", &"x".repeat(2000)).is_err());
        // unicode and spaces are fine
        assert_eq!(
            resolve_fileid("照片/a.jpg", "缩略 图.heic").unwrap(),
            "照片/缩略 图.heic"
        );
        // fileids are URL-decoded, as COS documents; what they decode to is checked like any key
        assert_eq!(
            resolve_fileid("p/a.jpg", "%E7%BC%A9%E7%95%A5%20x.heic").unwrap(),
            "p/缩略 x.heic"
        );
        assert!(resolve_fileid("p/a.jpg", "%2E%2E/%2E%2E/x.jpg").is_err());
        assert!(resolve_fileid("p/a.jpg", "%FF.jpg").is_err());
    }

    #[test]
    fn pic_operations_json() {
        let ops = PicOperations::parse(
            r#"{"is_pic_info":1,"rules":[{"fileid":"x.heic","rule":"imageMogr2/format/heif","bucket":"b2"}]}"#,
        )
        .unwrap();
        assert_eq!(ops.is_pic_info, 1);
        assert_eq!(ops.rules[0].bucket.as_deref(), Some("b2"));
        assert_eq!(PicOperations::parse("{}").unwrap().rules.len(), 0);
        let six = format!(
            r#"{{"rules":[{}]}}"#,
            [r#"{"fileid":"a","rule":"imageMogr2/strip"}"#; 6].join(",")
        );
        assert!(PicOperations::parse(&six)
            .unwrap_err()
            .message
            .contains("at most 5"));
        assert!(PicOperations::parse("not json").is_err());
        assert!(PicOperations::parse(r#"{"rules":[{"rule":"imageMogr2/strip"}]}"#).is_err());
        assert!(PicOperations::parse(r#"{"is_pic_info":2}"#).is_err());
    }
}
