//! Pic-Operations JSON, fileid resolution, and the UploadResult / Error XML of cos-api.md.

use crate::info::ImageInfo;
use crate::{Error, Result};
use quick_xml::escape::escape;
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
/// bucket root), anything else is relative to the input's folder. A trailing `/`, empty segments, `.`
/// and `..` segments, control characters and over-long keys are refused.
pub fn resolve_fileid(input_key: &str, fileid: &str) -> Result<String> {
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
    if fileid.chars().any(|c| c.is_control() || c == '\\') {
        return Err(bad("it contains control characters or a backslash"));
    }
    let (base, rel) = match fileid.strip_prefix('/') {
        Some(abs) => (String::new(), abs),
        None => (
            input_key
                .rfind('/')
                .map_or(String::new(), |i| input_key[..=i].to_string()),
            fileid,
        ),
    };
    for seg in rel.split('/') {
        match seg {
            "" => return Err(bad("it has an empty path segment (//)")),
            "." | ".." => return Err(bad("it contains . or .. segments")),
            _ => {}
        }
    }
    let key = format!("{base}{rel}");
    if key.len() > 1024 {
        return Err(bad("the resulting key is longer than 1024 bytes"));
    }
    Ok(key)
}

fn truncate(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

/// One stored output (`<Object>` in `<ProcessResults>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessResult {
    pub key: String,
    pub location: String,
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub size: u64,
    pub quality: u8,
    pub etag: String,
}

/// The input, reported when `is_pic_info` is 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalInfo {
    pub key: String,
    pub location: String,
    pub etag: String,
    pub info: ImageInfo,
}

fn quoted(etag: &str) -> String {
    let bare = etag.trim_matches('"');
    format!("&quot;{}&quot;", escape(bare))
}

/// `<UploadResult>` exactly as cos-api.md shows it.
pub fn upload_result_xml(original: Option<&OriginalInfo>, results: &[ProcessResult]) -> String {
    let mut x = String::from("<UploadResult>");
    if let Some(o) = original {
        let i = &o.info;
        x += &format!(
            "<OriginalInfo><Key>{}</Key><Location>{}</Location><ETag>{}</ETag><ImageInfo><Format>{}</Format>\
<Width>{}</Width><Height>{}</Height><Quality>{}</Quality><Ave>{}</Ave><Orientation>{}</Orientation></ImageInfo>\
</OriginalInfo>",
            escape(&o.key),
            escape(&o.location),
            quoted(&o.etag),
            escape(i.format.to_uppercase()),
            i.width,
            i.height,
            i.quality,
            escape(&i.photo_rgb),
            i.orientation,
        );
    }
    x += "<ProcessResults>";
    for r in results {
        x += &format!(
            "<Object><Key>{}</Key><Location>{}</Location><Format>{}</Format><Width>{}</Width><Height>{}</Height>\
<Size>{}</Size><Quality>{}</Quality><ETag>{}</ETag></Object>",
            escape(&r.key),
            escape(&r.location),
            escape(&r.format),
            r.width,
            r.height,
            r.size,
            r.quality,
            quoted(&r.etag),
        );
    }
    x += "</ProcessResults></UploadResult>";
    x
}

/// `<Error>` with code, message, resource and request id.
pub fn error_xml(e: &Error, resource: &str, request_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><Resource>{}</Resource>\
<RequestId>{}</RequestId></Error>",
        e.code.as_str(),
        escape(&e.message),
        escape(resource),
        escape(request_id)
    )
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

    #[test]
    fn xml_is_escaped_and_shaped_like_cos() {
        let r = ProcessResult {
            key: "p1/<x>&.heic".into(),
            location: "bucket.host/p1/<x>&.heic".into(),
            format: "heif".into(),
            width: 640,
            height: 427,
            size: 23092,
            quality: 50,
            etag: "\"abc\"".into(),
        };
        let x = upload_result_xml(None, &[r]);
        assert!(
            x.starts_with(
                "<UploadResult><ProcessResults><Object><Key>p1/&lt;x&gt;&amp;.heic</Key>"
            ),
            "{x}"
        );
        assert!(x.contains("<ETag>&quot;abc&quot;</ETag>"));
        let e = error_xml(&Error::invalid("bad <rule>"), "/k", "id1");
        assert!(e.contains("<Code>InvalidArgument</Code><Message>bad &lt;rule&gt;</Message>"));
    }
}
