//! One route scenario, run against every front door — `mogr serve` over HTTP and the Lambda
//! functions under their runtime emulator — so that what a client can do does not depend on where
//! mogr runs: a multipart upload of a 12 MB photo in 1 MiB parts with `Pic-Operations` on complete
//! (all or nothing), its parts and the uploads listed, an abort, and a listing paged through.

use md5::{Digest, Md5};

/// An answer as a client sees it.
pub struct Answer {
    pub status: u16,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        (self.headers.iter())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A front door: sends `method path?query` with `headers` and `body`.
pub trait Front {
    fn send(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> impl std::future::Future<Output = Answer>;
}

/// An uncompressed 24-bit BMP of `w`×`h` (rows padded to 4 bytes) with a pattern of colours: a photo's
/// worth of bytes that any decoder reads.
pub fn bmp(w: u32, h: u32) -> Vec<u8> {
    let row = (w * 3).div_ceil(4) * 4;
    let size = 54 + row * h;
    let mut b = Vec::with_capacity(size as usize);
    b.extend(b"BM");
    b.extend(size.to_le_bytes());
    b.extend([0u8; 4]);
    b.extend(54u32.to_le_bytes());
    b.extend(40u32.to_le_bytes());
    b.extend(w.to_le_bytes());
    b.extend(h.to_le_bytes());
    b.extend(1u16.to_le_bytes());
    b.extend(24u16.to_le_bytes());
    b.extend([0u8; 24]);
    for y in 0..h {
        for x in 0..w {
            let noise = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 24;
            b.extend([(x % 256) as u8, (y % 256) as u8, noise as u8]);
        }
        b.extend(std::iter::repeat_n(0u8, (row - w * 3) as usize));
    }
    b
}

/// The text between `<tag>` and `</tag>`, each time it occurs.
pub fn all_of(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|s| s.split(&close).next())
        .map(str::to_string)
        .collect()
}

fn one_of(xml: &str, tag: &str) -> String {
    all_of(xml, tag)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
}

async fn initiate(front: &impl Front, path: &str) -> String {
    let a = front
        .send(
            "POST",
            path,
            "uploads",
            &[("content-type", "image/bmp")],
            vec![],
        )
        .await;
    assert_eq!(a.status, 200, "initiate {path}: {}", a.text());
    one_of(&a.text(), "UploadId")
}

/// The scenario. The bucket is empty or holds other keys, none under `big/` or `list/`.
pub async fn multipart_and_listing(front: &impl Front) {
    let photo = bmp(2000, 2000);
    assert!(photo.len() > 12_000_000);
    let path = "/big/photo.bmp";
    let id = initiate(front, path).await;

    // 12 parts of 1 MiB (the last one shorter): each answered with its ETag, the MD5 of its bytes
    let mut parts = Vec::new();
    for (i, chunk) in photo.chunks(1 << 20).enumerate() {
        let query = format!("partNumber={}&uploadId={id}", i + 1);
        let a = front.send("PUT", path, &query, &[], chunk.to_vec()).await;
        assert_eq!(a.status, 200, "part {}: {}", i + 1, a.text());
        let etag = a.header("etag").expect("a part's ETag").trim_matches('"');
        assert_eq!(etag, format!("{:x}", Md5::digest(chunk)));
        parts.push(etag.to_string());
    }
    assert_eq!(parts.len(), 12);

    // its parts, and the uploads in progress
    let a = front
        .send("GET", path, &format!("uploadId={id}"), &[], vec![])
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let xml = a.text();
    assert_eq!(all_of(&xml, "PartNumber").len(), 12, "{xml}");
    assert_eq!(all_of(&xml, "Size")[0], (1 << 20).to_string());
    let a = front.send("GET", "/", "uploads", &[], vec![]).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert!(all_of(&a.text(), "UploadId").contains(&id), "{}", a.text());

    let body: String = parts
        .iter()
        .enumerate()
        .map(|(i, e)| {
            format!(
                "<Part><PartNumber>{}</PartNumber><ETag>\"{e}\"</ETag></Part>",
                i + 1
            )
        })
        .collect();
    let body = format!("<CompleteMultipartUpload>{body}</CompleteMultipartUpload>");
    let query = format!("uploadId={id}");
    let complete = |ops: String| {
        let (body, query) = (body.clone().into_bytes(), query.clone());
        async move {
            front
                .send("POST", path, &query, &[("pic-operations", &ops)], body)
                .await
        }
    };
    let small = r#"{"fileid":"small.webp","rule":"imageMogr2/thumbnail/200x/format/webp"}"#;

    // all or nothing: a rule that may not write refuses the whole upload, and its parts stay
    let refused = complete(format!(
        r#"{{"rules":[{small},{{"fileid":"/_mogr/planted.webp","rule":"imageMogr2/format/webp"}}]}}"#
    ))
    .await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    for key in ["/big/photo.bmp", "/big/small.webp"] {
        let a = front.send("HEAD", key, "", &[], vec![]).await;
        assert_eq!(a.status, 404, "{key} was stored");
    }

    // the upload stored whole, with its rule's output
    let done = complete(format!(r#"{{"is_pic_info":1,"rules":[{small}]}}"#)).await;
    let xml = done.text();
    assert_eq!(done.status, 200, "{xml}");
    assert!(xml.contains("<CompleteMultipartUploadResult>"), "{xml}");
    assert!(xml.contains("<Key>big/small.webp</Key>"), "{xml}");
    assert!(xml.contains("<Width>2000</Width>"), "{xml}");
    let whole = format!("{:x}", Md5::digest(&photo));
    let head = front.send("HEAD", path, "", &[], vec![]).await;
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("etag").map(|e| e.trim_matches('"')),
        Some(&*whole)
    );
    let info = front.send("GET", path, "imageInfo", &[], vec![]).await;
    assert!(info.text().contains("\"2000\""), "{}", info.text());
    let webp = front.send("GET", "/big/small.webp", "", &[], vec![]).await;
    assert_eq!(webp.status, 200);
    assert_eq!(
        crate::image_facts(&webp.body),
        (mogr::Format::Webp, 200, 200)
    );
    // a completed upload is gone
    let a = front
        .send("GET", path, &format!("uploadId={id}"), &[], vec![])
        .await;
    assert_eq!(a.status, 404);
    assert!(a.text().contains("<Code>NoSuchUpload</Code>"));

    // abort: the upload and its parts are gone, and no part lands in it afterwards
    let other = "/big/other.bmp";
    let id = initiate(front, other).await;
    let part = format!("partNumber=1&uploadId={id}");
    let a = front.send("PUT", other, &part, &[], vec![7; 1000]).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let a = front
        .send("DELETE", other, &format!("uploadId={id}"), &[], vec![])
        .await;
    assert_eq!(a.status, 204, "{}", a.text());
    for (method, query) in [("GET", format!("uploadId={id}")), ("PUT", part)] {
        let a = front.send(method, other, &query, &[], vec![7; 10]).await;
        assert_eq!(a.status, 404, "{method} after abort: {}", a.text());
    }
    let a = front.send("GET", "/", "uploads", &[], vec![]).await;
    assert!(!a.text().contains(&id), "{}", a.text());

    // a listing paged through, 2 keys a page; mogr's own objects are never listed
    let keys: Vec<String> = (1..=5).map(|i| format!("list/k{i}.txt")).collect();
    for key in &keys {
        let a = front
            .send("PUT", &format!("/{key}"), "", &[], key.clone().into_bytes())
            .await;
        assert_eq!(a.status, 200, "{}", a.text());
    }
    let (mut listed, mut token, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let mut query = "list-type=2&prefix=list%2F&max-keys=2".to_string();
        if let Some(t) = &token {
            query += &format!("&continuation-token={t}");
        }
        let a = front.send("GET", "/", &query, &[], vec![]).await;
        assert_eq!(a.status, 200, "{}", a.text());
        let xml = a.text();
        listed.extend(all_of(&xml, "Key"));
        pages += 1;
        match one_of(&xml, "IsTruncated").as_str() {
            "true" => token = Some(one_of(&xml, "NextContinuationToken")),
            _ => break,
        }
    }
    assert_eq!((listed, pages), (keys, 3));
    let a = front
        .send("GET", "/", "list-type=2&delimiter=%2F", &[], vec![])
        .await;
    let prefixes = all_of(&a.text(), "Prefix");
    assert!(
        prefixes.contains(&"big/".to_string()) && prefixes.contains(&"list/".to_string()),
        "{}",
        a.text()
    );
    assert!(!a.text().contains("_mogr"), "{}", a.text());
    let a = front
        .send("GET", "/", "list-type=2&prefix=_mogr%2F", &[], vec![])
        .await;
    assert!(all_of(&a.text(), "Key").is_empty(), "{}", a.text());
}
