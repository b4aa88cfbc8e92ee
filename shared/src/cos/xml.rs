//! Every XML body mogr answers with, shaped exactly as cos-api.md shows COS's: `<UploadResult>` and
//! `<Error>`.

use crate::info::ImageInfo;
use crate::Error;
use quick_xml::escape::escape;

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

/// The input: key, location and ETag always (as COS answers), its `ImageInfo` when `is_pic_info` is 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalInfo {
    pub key: String,
    pub location: String,
    pub etag: String,
    pub info: Option<ImageInfo>,
}

fn quoted(etag: &str) -> String {
    let bare = etag.trim_matches('"');
    format!("&quot;{}&quot;", escape(bare))
}

/// `<CopyObjectResult>`, as S3 and COS answer a copy: the copy's ETag and time (ISO 8601).
pub fn copy_result_xml(etag: &str, modified: std::time::SystemTime) -> String {
    let when = crate::store::iso8601(modified);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyObjectResult><ETag>{}</ETag>\
         <LastModified>{when}</LastModified></CopyObjectResult>",
        quoted(etag)
    )
}

/// `<UploadResult>` exactly as cos-api.md shows it.
pub fn upload_result_xml(original: Option<&OriginalInfo>, results: &[ProcessResult]) -> String {
    format!(
        "<UploadResult>{}</UploadResult>",
        report_xml(original, results)
    )
}

/// What `<UploadResult>` holds (`<OriginalInfo>`, `<ProcessResults>`), as a multipart upload's
/// `<CompleteMultipartUploadResult>` holds it too.
pub fn report_xml(original: Option<&OriginalInfo>, results: &[ProcessResult]) -> String {
    let mut x = String::new();
    if let Some(o) = original {
        x += &format!(
            "<OriginalInfo><Key>{}</Key><Location>{}</Location><ETag>{}</ETag>",
            escape(&o.key),
            escape(&o.location),
            quoted(&o.etag),
        );
        if let Some(i) = &o.info {
            x += &format!(
                "<ImageInfo><Format>{}</Format><Width>{}</Width><Height>{}</Height><Quality>{}</Quality>\
<Ave>{}</Ave><Orientation>{}</Orientation></ImageInfo>",
                escape(i.format.to_uppercase()),
                i.width,
                i.height,
                i.quality,
                escape(&i.photo_rgb),
                i.orientation,
            );
        }
        x += "</OriginalInfo>";
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
    x += "</ProcessResults>";
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
