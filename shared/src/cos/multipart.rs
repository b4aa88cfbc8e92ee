//! The XML of COS's multipart upload (initiate, list uploads, list parts, complete), which the SDKs'
//! `upload_file` uses for files above their part size.

use crate::{Error, Result};
use quick_xml::escape::escape;
use quick_xml::events::Event;
use quick_xml::Reader;

/// An upload in progress: its key and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub key: String,
    pub id: String,
}

/// A stored part: number, ETag (without quotes) and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub number: u32,
    pub etag: String,
    pub size: u64,
}

fn doc(body: String) -> String {
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}")
}

/// `<InitiateMultipartUploadResult>`
pub fn initiate_xml(bucket: &str, upload: &Upload) -> String {
    doc(format!(
        "<InitiateMultipartUploadResult><Bucket>{}</Bucket><Key>{}</Key><UploadId>{}</UploadId>\
         </InitiateMultipartUploadResult>",
        escape(bucket),
        escape(&upload.key),
        escape(&upload.id)
    ))
}

/// `<ListMultipartUploadsResult>` for the uploads under `prefix`.
pub fn list_uploads_xml(bucket: &str, prefix: &str, uploads: &[Upload]) -> String {
    let mut x = format!(
        "<ListMultipartUploadsResult><Bucket>{}</Bucket><Prefix>{}</Prefix><MaxUploads>1000</MaxUploads>\
         <IsTruncated>false</IsTruncated>",
        escape(bucket),
        escape(prefix)
    );
    for u in uploads {
        x += &format!(
            "<Upload><Key>{}</Key><UploadId>{}</UploadId></Upload>",
            escape(&u.key),
            escape(&u.id)
        );
    }
    doc(x + "</ListMultipartUploadsResult>")
}

/// `<ListPartsResult>`
pub fn list_parts_xml(bucket: &str, upload: &Upload, parts: &[Part]) -> String {
    let mut x = format!(
        "<ListPartsResult><Bucket>{}</Bucket><Key>{}</Key><UploadId>{}</UploadId><MaxParts>10000</MaxParts>\
         <IsTruncated>false</IsTruncated>",
        escape(bucket),
        escape(&upload.key),
        escape(&upload.id)
    );
    for p in parts {
        x += &format!(
            "<Part><PartNumber>{}</PartNumber><ETag>&quot;{}&quot;</ETag><Size>{}</Size></Part>",
            p.number,
            escape(&p.etag),
            p.size
        );
    }
    doc(x + "</ListPartsResult>")
}

/// `<CompleteMultipartUploadResult>`; `processed` holds the `OriginalInfo` and `ProcessResults` of the
/// object's `Pic-Operations`, if it had any.
pub fn complete_xml(
    location: &str,
    bucket: &str,
    key: &str,
    etag: &str,
    processed: Option<&str>,
) -> String {
    doc(format!(
        "<CompleteMultipartUploadResult><Location>{}</Location><Bucket>{}</Bucket><Key>{}</Key>\
         <ETag>&quot;{}&quot;</ETag>{}</CompleteMultipartUploadResult>",
        escape(location),
        escape(bucket),
        escape(key),
        escape(etag),
        processed.unwrap_or("")
    ))
}

/// The parts a `<CompleteMultipartUpload>` body lists, in its order: (number, ETag without quotes).
pub fn parse_complete(body: &[u8]) -> Result<Vec<(u32, String)>> {
    let bad = |why: String| {
        Error::invalid(format!(
            "the CompleteMultipartUpload body is not valid: {why}; send <CompleteMultipartUpload><Part>\
             <PartNumber>1</PartNumber><ETag>\"...\"</ETag></Part>...</CompleteMultipartUpload>"
        ))
    };
    let mut reader = Reader::from_reader(body);
    let mut parts = Vec::new();
    let (mut number, mut etag, mut field) = (None, None, String::new());
    loop {
        match reader
            .read_event()
            .map_err(|e| bad(format!("XML error: {e}")))?
        {
            Event::Start(e) => field = String::from_utf8_lossy(e.name().as_ref()).into_owned(),
            Event::Text(t) => {
                let text = t
                    .xml_content()
                    .map_err(|e| bad(format!("XML error: {e}")))?
                    .trim()
                    .to_string();
                match field.as_str() {
                    "PartNumber" => {
                        number = Some(text.parse::<u32>().map_err(|_| {
                            bad(format!("PartNumber {text:?} is not a whole number"))
                        })?)
                    }
                    // `&quot;` around an ETag comes as its own event, so only the digits arrive here
                    "ETag" => etag = Some(text.trim_matches('"').to_string()),
                    _ => {}
                }
            }
            Event::End(e) => {
                if e.name().as_ref() == b"Part" {
                    match (number.take(), etag.take()) {
                        (Some(n), Some(t)) => parts.push((n, t)),
                        _ => return Err(bad("a Part lacks its PartNumber or ETag".into())),
                    }
                }
                field.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if parts.is_empty() {
        return Err(bad("it lists no parts".into()));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_bodies_as_the_sdks_send_them() {
        let body = br#"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"aa"</ETag></Part>
            <Part><ETag>&quot;bb&quot;</ETag><PartNumber>2</PartNumber></Part></CompleteMultipartUpload>"#;
        assert_eq!(
            parse_complete(body).unwrap(),
            [(1, "aa".to_string()), (2, "bb".to_string())]
        );
        for bad in [
            &b"<CompleteMultipartUpload></CompleteMultipartUpload>"[..],
            b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>a</ETag></Part>",
            b"<CompleteMultipartUpload><Part><ETag>a</ETag></Part></CompleteMultipartUpload>",
            b"not xml <<<",
        ] {
            assert!(
                parse_complete(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let upload = Upload {
            key: "a&b.jpg".into(),
            id: "u1".into(),
        };
        assert!(
            initiate_xml("bkt", &upload).contains("<Key>a&amp;b.jpg</Key><UploadId>u1</UploadId>")
        );
    }
}
