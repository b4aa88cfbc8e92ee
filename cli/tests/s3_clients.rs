//! boto3 and the AWS CLI (`scripts/setup.sh` pins them), unchanged, against `mogr serve`:
//! `s3_clients.py` makes the calls an S3 user's code and shell make and checks what they return against
//! the bytes in the served folder.

mod common;

use common::{examples, run_client_script, run_client_script_with, start, start_with};

#[test]
fn boto3_and_the_aws_cli_work_against_mogr_serve() {
    let s = start("s3-clients", &[]);
    let sample = examples().join("photo.jpg");
    let args = [s.base.as_ref(), s.root.as_os_str(), sample.as_os_str()];
    run_client_script("s3_clients.py", &args, "boto3");
}

/// The same calls with `mogr serve` holding the clients' key: every one is SigV4-checked, and wrong
/// keys and unsigned writes are refused; presigned URLs work (`MOGR_KEYED` turns on the last part).
#[test]
fn boto3_and_the_aws_cli_signatures_are_checked_when_mogr_serve_holds_their_key() {
    let s = start(
        "s3-clients-keyed",
        &[("MOGR_ACCESS_KEYS", "AKIDEXAMPLE:secret")],
    );
    let sample = examples().join("photo.jpg");
    let args = [s.base.as_ref(), s.root.as_os_str(), sample.as_os_str()];
    run_client_script_with("s3_clients.py", &args, "boto3", &[("MOGR_KEYED", "1")]);
}

/// The same calls over HTTPS (a TLS proxy in front of `mogr serve`), where boto3 and the AWS CLI send
/// every upload in aws-chunked framing with a trailing checksum, signed with the server's key: the
/// bodies are decoded and their checksums checked; a changed or cut-short body is refused.
#[test]
fn boto3_and_the_aws_cli_over_https_send_aws_chunked_bodies() {
    // the proxy's address, which the server must accept as its Host
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
        .to_string();
    let s = start_with(
        "s3-clients-tls",
        &[("MOGR_ACCESS_KEYS", "AKIDEXAMPLE:secret")],
        &["--allow-host", &format!("127.0.0.1:{port}")],
    );
    let sample = examples().join("photo.jpg");
    let args = [s.base.as_ref(), s.root.as_os_str(), sample.as_os_str()];
    let env = [
        ("MOGR_KEYED", "1"),
        ("MOGR_TLS", "1"),
        ("MOGR_TLS_PORT", &port),
    ];
    run_client_script_with("s3_clients.py", &args, "boto3", &env);
}
