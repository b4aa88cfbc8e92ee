//! `?imageInfo`: COS's shape, read from one decode.

use mogr::codec::{self, Limits};

mod common;
use common::fixture;

#[test]
fn image_info_matches_cos_shape() {
    let info = mogr::info::image_info(&fixture("animated.gif"), &Limits::default()).unwrap();
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["format"], "gif");
    assert_eq!(json["width"], "96");
    assert_eq!(json["frame_count"], "4");
    assert_eq!(json["md5"].as_str().unwrap().len(), 32);
    assert!(json["photo_rgb"].as_str().unwrap().starts_with("0x"));
}

#[test]
fn describe_reads_the_decode_image_info_made() {
    let gif = fixture("animated.gif");
    let l = Limits::default();
    let probe = codec::probe(&gif, &l).unwrap();
    let pic = codec::decode(&gif, &probe, &l, mogr::info::frames_needed(&probe)).unwrap();
    assert_eq!(
        mogr::info::describe(&gif, &probe, &pic),
        mogr::info::image_info(&gif, &l).unwrap()
    );
}

/// A little-endian EXIF block (TIFF header onwards): Make, Orientation and XResolution in IFD0, and in
/// the Exif IFD ExposureTime, ExifVersion and ColorSpace.
fn exif_block() -> Vec<u8> {
    let mut b = b"II\x2a\x00\x08\x00\x00\x00".to_vec();
    let entry = |b: &mut Vec<u8>, tag: u16, ty: u16, count: u32, value: [u8; 4]| {
        b.extend(tag.to_le_bytes());
        b.extend(ty.to_le_bytes());
        b.extend(count.to_le_bytes());
        b.extend(value);
    };
    // IFD0 at 8 (4 entries: ends at 62), the Exif IFD at 62 (3 entries: ends at 104), data from 104
    b.extend(4u16.to_le_bytes());
    entry(&mut b, 0x010f, 2, 6, 104u32.to_le_bytes()); // Make, ASCII
    entry(&mut b, 0x0112, 3, 1, [6, 0, 0, 0]); // Orientation, SHORT
    entry(&mut b, 0x011a, 5, 1, 110u32.to_le_bytes()); // XResolution, RATIONAL
    entry(&mut b, 0x8769, 4, 1, 62u32.to_le_bytes()); // the Exif IFD
    b.extend(0u32.to_le_bytes());
    b.extend(3u16.to_le_bytes());
    entry(&mut b, 0x829a, 5, 1, 118u32.to_le_bytes()); // ExposureTime
    entry(&mut b, 0x9000, 7, 4, *b"0230"); // ExifVersion, UNDEFINED
    entry(&mut b, 0xa001, 3, 1, [1, 0, 0, 0]); // ColorSpace
    b.extend(0u32.to_le_bytes());
    assert_eq!(b.len(), 104);
    b.extend(b"Canon\0");
    for (num, den) in [(72u32, 1u32), (1, 200)] {
        b.extend(num.to_le_bytes());
        b.extend(den.to_le_bytes());
    }
    b
}

#[test]
fn exif_answers_cos_json_from_every_container_and_no_exif_data_without() {
    let mut pic = codec::Picture::still(
        image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
            16,
            16,
            image::Rgb([9, 99, 199]),
        )),
        codec::Format::Png,
    );
    pic.exif = Some(exif_block());
    let expected = r#"{"ColorSpace":{"val":"sRGB"},"ExifVersion":{"val":"48 50 51 48"},"ExposureTime":{"val":"1/200"},"Make":{"val":"Canon"},"Orientation":{"val":"6"},"XResolution":{"val":"72/1"}}"#;
    let l = Limits::default();
    for format in [
        codec::Format::Jpeg,
        codec::Format::Heif,
        codec::Format::Webp,
        codec::Format::Png,
    ] {
        let opts = codec::EncodeOptions {
            format,
            quality: 80,
            interlace: false,
            strip: false,
            profile: mogr::Profile::Download,
            threads: 1,
            optimized: false,
        };
        let bytes = codec::encode(&pic, &opts).unwrap();
        let json = mogr::info::exif_json(&bytes, &l).unwrap();
        assert_eq!(json, expected, "{format:?}");
        // ... and stripped
        let bytes = codec::encode(
            &pic,
            &codec::EncodeOptions {
                strip: true,
                ..opts
            },
        )
        .unwrap();
        assert_eq!(
            mogr::info::exif_json(&bytes, &l).unwrap(),
            mogr::info::NO_EXIF,
            "{format:?}"
        );
    }
    assert_eq!(mogr::info::NO_EXIF, r#"{"error" : "no exif data"}"#);
    for plain in ["rgb.png", "animated.gif", "rgb.bmp", "lossy.webp"] {
        assert_eq!(
            mogr::info::exif_json(&fixture(plain), &l).unwrap(),
            mogr::info::NO_EXIF,
            "{plain}"
        );
    }
    let e = mogr::info::exif_json(b"not an image at all", &l).unwrap_err();
    assert!(e.is_client_error(), "{e}");
}
