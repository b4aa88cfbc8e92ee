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
