//! The XML of DeleteObjects (`POST /?delete`), as S3 and COS take and answer it: used by
//! `aws s3 rm --recursive` and the COS SDKs' `delete_objects`.

use crate::{Error, Result};
use quick_xml::escape::escape;
use quick_xml::events::Event;
use quick_xml::Reader;

/// The most keys one request may name, as in S3 and COS.
pub const MAX_KEYS: usize = 1000;

/// What a `<Delete>` body asks: the keys, in order, and whether the answer lists only failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    pub quiet: bool,
    /// Each `<Object>`'s key and its version id, if it names one.
    pub objects: Vec<(String, Option<String>)>,
}

/// Reads a `<Delete>` body.
pub fn parse_delete(body: &[u8]) -> Result<Delete> {
    let bad = |why: String| {
        Error::invalid(format!(
            "MalformedXML: the Delete body is not valid: {why}; send <Delete><Object><Key>...</Key>\
             </Object>...</Delete>"
        ))
    };
    let mut reader = Reader::from_reader(body);
    let mut delete = Delete {
        quiet: false,
        objects: Vec::new(),
    };
    let (mut key, mut version) = (None::<String>, None);
    let mut text = String::new();
    loop {
        match reader
            .read_event()
            .map_err(|e| bad(format!("XML error: {e}")))?
        {
            Event::Start(_) => text.clear(),
            // a key's text may come in several events (entities, CDATA); it is kept as written
            Event::Text(t) => {
                text += &t
                    .xml_content()
                    .map_err(|e| bad(format!("XML error: {e}")))?;
            }
            Event::GeneralRef(r) => {
                let name = String::from_utf8_lossy(r.as_ref()).into_owned();
                let c = match name.as_str() {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    _ => match r.resolve_char_ref() {
                        Ok(Some(c)) => {
                            text.push(c);
                            continue;
                        }
                        _ => return Err(bad(format!("unknown entity &{name};"))),
                    },
                };
                text += c;
            }
            Event::CData(c) => text += &String::from_utf8_lossy(&c),
            Event::End(e) => {
                match e.name().as_ref() {
                    b"Key" => key = Some(std::mem::take(&mut text)),
                    b"VersionId" => version = Some(std::mem::take(&mut text)),
                    b"Quiet" => delete.quiet = text.trim().eq_ignore_ascii_case("true"),
                    b"Object" => match key.take() {
                        Some(k) => delete.objects.push((k, version.take())),
                        None => return Err(bad("an Object lacks its Key".into())),
                    },
                    _ => {}
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if delete.objects.is_empty() {
        return Err(bad("it names no Object".into()));
    }
    if delete.objects.len() > MAX_KEYS {
        return Err(bad(format!(
            "it names {} objects, more than the {MAX_KEYS} one request may",
            delete.objects.len()
        )));
    }
    Ok(delete)
}

/// `<DeleteResult>`: each key deleted (unless quiet) and each failure with its code and message.
pub fn delete_result_xml(quiet: bool, results: &[(String, Result<()>)]) -> String {
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
    );
    for (key, result) in results {
        match result {
            Ok(()) if quiet => {}
            Ok(()) => x += &format!("<Deleted><Key>{}</Key></Deleted>", escape(key)),
            Err(e) => {
                x += &format!(
                    "<Error><Key>{}</Key><Code>{}</Code><Message>{}</Message></Error>",
                    escape(key),
                    e.code.as_str(),
                    escape(&e.message)
                )
            }
        }
    }
    x + "</DeleteResult>"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Code;

    #[test]
    fn delete_bodies_and_results() {
        let d = parse_delete(
            b"<?xml version=\"1.0\"?><Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
              <Quiet>true</Quiet><Object><Key>a &amp; b.jpg</Key></Object>\
              <Object><Key>c.jpg</Key><VersionId>null</VersionId></Object></Delete>",
        )
        .unwrap();
        assert!(d.quiet);
        assert_eq!(
            d.objects,
            vec![
                ("a & b.jpg".to_string(), None),
                ("c.jpg".to_string(), Some("null".to_string()))
            ]
        );
        assert!(parse_delete(b"<Delete></Delete>").is_err());
        assert!(parse_delete(b"<Delete><Object></Object></Delete>").is_err());
        assert!(parse_delete(b"not xml <<").is_err());
        let many = format!(
            "<Delete>{}</Delete>",
            "<Object><Key>k</Key></Object>".repeat(MAX_KEYS + 1)
        );
        assert!(parse_delete(many.as_bytes()).is_err());
        let results = vec![
            ("a<b".to_string(), Ok(())),
            (
                "_mogr/x".to_string(),
                Err(Error::new(Code::AccessDenied, "reserved")),
            ),
        ];
        let xml = delete_result_xml(false, &results);
        assert!(
            xml.contains("<Deleted><Key>a&lt;b</Key></Deleted>"),
            "{xml}"
        );
        assert!(
            xml.contains("<Error><Key>_mogr/x</Key><Code>AccessDenied</Code>"),
            "{xml}"
        );
        assert!(!delete_result_xml(true, &results).contains("<Deleted>"));
    }
}
