"""boto3 and the AWS CLI (pinned in scripts/setup.sh), unchanged, against `mogr serve`.

Run by cli/tests/s3_clients.rs: `python3 s3_clients.py <http://host:port> <served folder> <sample image>`.
Every call is checked against what the SDK returns and against the bytes in the served folder.
"""

import datetime
import filecmp
import hashlib
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import urllib3

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT, ROOT, SAMPLE = sys.argv[1], sys.argv[2], sys.argv[3]
BUCKET = "photos"
MiB = 1024 * 1024
# MOGR_TLS=1: every call over HTTPS, through a TLS-terminating proxy in front of mogr serve (as API
# Gateway or CloudFront front the deployment). Over HTTPS, boto3 and the AWS CLI send upload bodies in
# aws-chunked framing with a trailing checksum; the proxy counts those requests, so the run shows mogr
# read them.
TLS = os.environ.get("MOGR_TLS") == "1"
STREAMING = b"streaming-unsigned-payload-trailer"
streamed = []


def start_tls_proxy(backend):
    backend = urllib.parse.urlsplit(backend)
    certs = tempfile.mkdtemp()
    cert, key = os.path.join(certs, "cert.pem"), os.path.join(certs, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    # the port the server was told to accept as its Host (MOGR_TLS_PORT)
    listener = socket.create_server(("127.0.0.1", int(os.environ.get("MOGR_TLS_PORT", "0"))))

    def pipe(src, dst, sniff):
        tail = b""
        try:
            while data := src.recv(65536):
                if sniff:
                    seen = (tail + data).lower()
                    streamed.append(seen.count(STREAMING) - tail.lower().count(STREAMING))
                    tail = data[-64:]
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.close()
            except OSError:
                pass

    def connection(client):
        try:
            tls = context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError):
            client.close()
            return
        upstream = socket.create_connection((backend.hostname, backend.port))
        threading.Thread(target=pipe, args=(upstream, tls, False), daemon=True).start()
        pipe(tls, upstream, True)

    def accept():
        while True:
            client, _ = listener.accept()
            threading.Thread(target=connection, args=(client,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return "https://127.0.0.1:%d" % listener.getsockname()[1]


if TLS:
    ENDPOINT = start_tls_proxy(ENDPOINT)
    # the proxy's certificate is made up for the run: the clients are told not to verify it
    urllib3.disable_warnings()
    ssl._create_default_https_context = ssl._create_unverified_context

# What a user writes for an S3-compatible endpoint: path-style addressing, any keys (mogr serve
# without keys does not check them).
os.environ.update(
    AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
    AWS_SECRET_ACCESS_KEY="secret",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_CONFIG_FILE=os.devnull,
    AWS_SHARED_CREDENTIALS_FILE=os.devnull,
)
# botocore's own retries, as a user has them: a server closes a keep-alive connection left idle past
# its header timeout (mogr serve: 10 s; S3 too, later), and a request sent on it as it closes is retried
# (4xx and 501 answers are not).
s3 = boto3.client("s3", endpoint_url=ENDPOINT, verify=not TLS)
checks = 0


def check(ok, what):
    global checks
    if not ok:
        raise AssertionError(what)
    checks += 1


def on_disk(key):
    with open(os.path.join(ROOT, key), "rb") as f:
        return f.read()


def status_of(call):
    try:
        call()
    except ClientError as e:
        return int(e.response["ResponseMetadata"]["HTTPStatusCode"]), e.response["Error"].get("Code")
    return 200, None


with open(SAMPLE, "rb") as f:
    photo = f.read()

# put/get/head: the bytes, the ETag, user metadata in S3's dialect, LastModified
resp = s3.put_object(Bucket=BUCKET, Key="b3/photo.jpg", Body=photo, ContentType="image/jpeg",
                     Metadata={"owner": "boto3"})
check(resp["ETag"] == '"%s"' % hashlib.md5(photo).hexdigest(), "put_object ETag %r" % resp["ETag"])
check(on_disk("b3/photo.jpg") == photo, "put_object wrote the key, not <bucket>/<key>")
check(not os.path.exists(os.path.join(ROOT, BUCKET)), "no folder named after the bucket")
resp = s3.get_object(Bucket=BUCKET, Key="b3/photo.jpg")
check(resp["Body"].read() == photo, "get_object body")
check(resp["Metadata"] == {"owner": "boto3"}, "get_object Metadata %r" % resp["Metadata"])
check(isinstance(resp["LastModified"], datetime.datetime), "get_object LastModified %r" % resp.get("LastModified"))
# the standard headers given at upload come back as S3 gives them
s3.put_object(Bucket=BUCKET, Key="b3/headers.jpg", Body=photo, ContentType="image/jpeg",
              CacheControl="max-age=60", ContentDisposition='attachment; filename="p.jpg"',
              ContentLanguage="en")
resp = s3.get_object(Bucket=BUCKET, Key="b3/headers.jpg")
check((resp["CacheControl"], resp["ContentDisposition"], resp["ContentLanguage"]) ==
      ("max-age=60", 'attachment; filename="p.jpg"', "en"), "stored headers %r" % resp)
check(resp["Metadata"] == {}, "standard headers are not user metadata %r" % resp["Metadata"])
resp = s3.get_object(Bucket=BUCKET, Key="b3/headers.jpg", ResponseContentDisposition="inline",
                     ResponseCacheControl="no-cache")
check((resp["ContentDisposition"], resp["CacheControl"]) == ("inline", "no-cache"), "response-* overrides")
head = s3.head_object(Bucket=BUCKET, Key="b3/photo.jpg")
check(head["ContentLength"] == len(photo), "head_object length")
check(head["ContentType"] == "image/jpeg", "head_object type")
check(head["Metadata"] == {"owner": "boto3"}, "head_object Metadata")
modified = head["LastModified"]
check(abs((datetime.datetime.now(datetime.timezone.utc) - modified).total_seconds()) < 300,
      "head_object LastModified is now: %r" % modified)

# ranges: one range is 206 with its bytes; past the end is 416
resp = s3.get_object(Bucket=BUCKET, Key="b3/photo.jpg", Range="bytes=100-199")
check(resp["ResponseMetadata"]["HTTPStatusCode"] == 206, "ranged get_object status")
check(resp["Body"].read() == photo[100:200], "ranged get_object body")
check(resp["ContentRange"] == "bytes 100-199/%d" % len(photo), "Content-Range %r" % resp.get("ContentRange"))
resp = s3.get_object(Bucket=BUCKET, Key="b3/photo.jpg", Range="bytes=-10")
check(resp["Body"].read() == photo[-10:], "suffix range")
check(status_of(lambda: s3.get_object(Bucket=BUCKET, Key="b3/photo.jpg", Range="bytes=%d-" % len(photo)))[0] == 416,
      "a range past the end is 416")

# conditional GETs: 304 and 412 as S3 answers them
etag = head["ETag"]
check(status_of(lambda: s3.get_object(Bucket=BUCKET, Key="b3/photo.jpg", IfNoneMatch=etag))[0] == 304, "If-None-Match")
check(status_of(lambda: s3.get_object(Bucket=BUCKET, Key="b3/photo.jpg", IfMatch='"nope"'))[0] == 412, "If-Match")
check(status_of(lambda: s3.get_object(Bucket=BUCKET, Key="b3/photo.jpg", IfModifiedSince=modified))[0] == 304,
      "If-Modified-Since")
check(status_of(lambda: s3.get_object(
    Bucket=BUCKET, Key="b3/photo.jpg", IfUnmodifiedSince=modified - datetime.timedelta(days=1)))[0] == 412,
    "If-Unmodified-Since")
check(s3.get_object(Bucket=BUCKET, Key="b3/photo.jpg", IfMatch=etag)["Body"].read() == photo, "If-Match that holds")

# a presigned URL (path-style, the signature in the query), fetched by a plain HTTP client
url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "b3/photo.jpg"})
check("/%s/b3/photo.jpg?" % BUCKET in url and "Signature=" in url, "a presigned URL: %s" % url)
with urllib.request.urlopen(url) as r:
    check(r.read() == photo, "a presigned URL serves the object")

# multipart both ways: upload_file above its threshold, download_file in ranged parts (8 MiB threshold,
# 12 MiB object), byte for byte
big = os.urandom(12 * MiB)
transfer = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=5 * MiB)
with tempfile.TemporaryDirectory() as tmp:
    src, dest = os.path.join(tmp, "big.bin"), os.path.join(tmp, "back.bin")
    with open(src, "wb") as f:
        f.write(big)
    s3.upload_file(src, BUCKET, "b3/big.bin", Config=transfer)
    check(on_disk("b3/big.bin") == big, "upload_file (multipart) stored the bytes")
    s3.download_file(BUCKET, "b3/big.bin", dest, Config=TransferConfig(multipart_threshold=8 * MiB))
    check(os.path.getsize(dest) == len(big), "download_file size %d" % os.path.getsize(dest))
    check(filecmp.cmp(src, dest, shallow=False), "download_file (ranged parts) byte for byte")

# the bucket: HeadBucket, ListBuckets, ListObjectsV2 with a delimiter
check(s3.head_bucket(Bucket=BUCKET)["ResponseMetadata"]["HTTPStatusCode"] == 200, "head_bucket")
check([b["Name"] for b in s3.list_buckets()["Buckets"]] == ["local"], "list_buckets")
listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="b3/", Delimiter="/")
keys = sorted(o["Key"] for o in listed.get("Contents", []))
check(keys == ["b3/big.bin", "b3/headers.jpg", "b3/photo.jpg"], "list_objects_v2 %r" % keys)
check(all(isinstance(o["LastModified"], datetime.datetime) for o in listed["Contents"]), "listing LastModified")

# copy: metadata copied, or replaced; a missing source is 404 and writes nothing
resp = s3.copy_object(Bucket=BUCKET, Key="b3/copy.jpg", CopySource={"Bucket": BUCKET, "Key": "b3/photo.jpg"})
check(resp["CopyObjectResult"]["ETag"] == etag, "copy_object ETag %r" % resp["CopyObjectResult"])
check(isinstance(resp["CopyObjectResult"]["LastModified"], datetime.datetime), "copy_object LastModified")
check(on_disk("b3/copy.jpg") == photo, "copy_object wrote the source's bytes")
head = s3.head_object(Bucket=BUCKET, Key="b3/copy.jpg")
check(head["Metadata"] == {"owner": "boto3"} and head["ContentType"] == "image/jpeg", "copied metadata %r" % head)
s3.copy_object(Bucket=BUCKET, Key="b3/copy.jpg", CopySource="%s/b3/photo.jpg" % BUCKET,
               MetadataDirective="REPLACE", Metadata={"owner": "replaced"}, ContentType="image/x-test")
head = s3.head_object(Bucket=BUCKET, Key="b3/copy.jpg")
check(head["Metadata"] == {"owner": "replaced"} and head["ContentType"] == "image/x-test", "replaced metadata %r" % head)
code = status_of(lambda: s3.copy_object(Bucket=BUCKET, Key="b3/photo.jpg",
                                        CopySource={"Bucket": BUCKET, "Key": "b3/missing.jpg"}))
check(code == (404, "NoSuchKey"), "copy from a missing source: %r" % (code,))
check(on_disk("b3/photo.jpg") == photo, "a failed copy left its destination as it was")
# not implemented: refused, the object untouched
check(status_of(lambda: s3.put_object_acl(Bucket=BUCKET, Key="b3/photo.jpg", ACL="public-read"))[0] == 501,
      "put_object_acl refused")
check(status_of(lambda: s3.put_object_tagging(Bucket=BUCKET, Key="b3/photo.jpg",
                                              Tagging={"TagSet": [{"Key": "a", "Value": "b"}]}))[0] == 501,
      "put_object_tagging refused")
check(on_disk("b3/photo.jpg") == photo, "refused requests left the object as it was")

# the AWS CLI: cp both ways, ls, sync both ways
aws = ["aws", "--endpoint-url", ENDPOINT] + (["--no-verify-ssl"] if TLS else [])


def cli(*args):
    # bytes, decoded leniently: under load the CLI's progress output once held a byte that is not
    # UTF-8, and text=True turned that into a crash of the test rather than a check of mogr
    out = subprocess.run(aws + list(args), capture_output=True)
    stdout, stderr = (o.decode("utf-8", errors="replace") for o in (out.stdout, out.stderr))
    if out.returncode != 0:
        raise AssertionError("aws %s: %s%s" % (" ".join(args), stdout, stderr))
    return stdout


with tempfile.TemporaryDirectory() as tmp:
    cli("s3", "cp", SAMPLE, "s3://%s/cli/photo.jpg" % BUCKET)
    check(on_disk("cli/photo.jpg") == photo, "aws s3 cp up")
    back = os.path.join(tmp, "back.jpg")
    cli("s3", "cp", "s3://%s/cli/photo.jpg" % BUCKET, back)
    check(open(back, "rb").read() == photo, "aws s3 cp down")
    cli("s3", "cp", "s3://%s/cli/photo.jpg" % BUCKET, "s3://%s/cli/copied.jpg" % BUCKET)
    check(on_disk("cli/copied.jpg") == photo, "aws s3 cp within the bucket (CopyObject)")
    check("photo.jpg" in cli("s3", "ls", "s3://%s/cli/" % BUCKET), "aws s3 ls")
    tree = os.path.join(tmp, "tree")
    for rel, body in [("a.txt", b"a"), ("sub/b.txt", b"bb"), ("sub/deeper/c.bin", os.urandom(1000))]:
        os.makedirs(os.path.dirname(os.path.join(tree, rel)), exist_ok=True)
        with open(os.path.join(tree, rel), "wb") as f:
            f.write(body)
    cli("s3", "sync", tree, "s3://%s/synced/" % BUCKET)
    for rel in ["a.txt", "sub/b.txt", "sub/deeper/c.bin"]:
        check(on_disk("synced/" + rel) == open(os.path.join(tree, rel), "rb").read(), "aws s3 sync up: " + rel)
    down = os.path.join(tmp, "down")
    cli("s3", "sync", "s3://%s/synced/" % BUCKET, down)
    check(filecmp.dircmp(tree, down).diff_files == [], "aws s3 sync down")
    for rel in ["a.txt", "sub/b.txt", "sub/deeper/c.bin"]:
        check(open(os.path.join(down, rel), "rb").read() == open(os.path.join(tree, rel), "rb").read(),
              "aws s3 sync down: " + rel)
    # a second sync finds nothing to do (sizes and times agree)
    check(cli("s3", "sync", tree, "s3://%s/synced/" % BUCKET).strip() == "", "a second sync uploads nothing")
    # rm --recursive (DeleteObjects): the tree is gone, nothing else
    cli("s3", "rm", "--recursive", "s3://%s/synced/" % BUCKET)
    check(not os.path.exists(os.path.join(ROOT, "synced")), "aws s3 rm --recursive")
    check(on_disk("cli/photo.jpg") == photo, "rm --recursive kept what was not under its prefix")

# DeleteObjects from boto3: quiet, a reserved key fails alone
resp = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "b3/copy.jpg"}, {"Key": "_mogr/cache/x"}]})
check([d["Key"] for d in resp.get("Deleted", [])] == ["b3/copy.jpg"], "delete_objects Deleted %r" % resp)
check([(e["Key"], e["Code"]) for e in resp.get("Errors", [])] == [("_mogr/cache/x", "AccessDenied")],
      "delete_objects Errors %r" % resp)
check(not os.path.exists(os.path.join(ROOT, "b3", "copy.jpg")), "delete_objects deleted the key")
resp = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "b3/headers.jpg"}], "Quiet": True})
check("Deleted" not in resp and "Errors" not in resp, "quiet delete_objects %r" % resp)
check(not os.path.exists(os.path.join(ROOT, "b3", "headers.jpg")), "quiet delete_objects deleted the key")

# With the server holding this script's key (MOGR_KEYED=1), every call above was signature-checked;
# here: a wrong secret, an unknown key and no signature are refused and write nothing, and presigned
# URLs work until they expire.
if os.environ.get("MOGR_KEYED") == "1":
    for key_id, secret, code in [("AKIDEXAMPLE", "wrong", "SignatureDoesNotMatch"),
                                 ("AKIDUNKNOWN", "secret", "InvalidAccessKeyId")]:
        bad = boto3.client("s3", endpoint_url=ENDPOINT, aws_access_key_id=key_id, aws_secret_access_key=secret,
                           verify=not TLS)
        got = status_of(lambda: bad.put_object(Bucket=BUCKET, Key="keyed/refused.jpg", Body=photo))
        check(got == (403, code), "%s: %r" % (code, got))
        got = status_of(lambda: bad.list_objects_v2(Bucket=BUCKET))
        check(got == (403, code), "listing with %s: %r" % (code, got))
    check(not os.path.exists(os.path.join(ROOT, "keyed")), "a refused write wrote nothing")
    # boto3 presigns with signature version 2 unless told otherwise: refused, saying how to sign
    v2 = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "keyed/v2.jpg"}, ExpiresIn=60)
    try:
        urllib.request.urlopen(urllib.request.Request(v2, data=photo, method="PUT"))
        check(False, "a SigV2 presigned PUT was taken")
    except urllib.error.HTTPError as e:
        check(e.code == 403 and b"s3v4" in e.read(), "SigV2 presigned PUT %r" % e.code)
    s3 = boto3.client("s3", endpoint_url=ENDPOINT, verify=not TLS, config=Config(signature_version="s3v4"))
    url = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "keyed/pre.jpg"}, ExpiresIn=60)
    req = urllib.request.Request(url, data=photo, method="PUT")
    check(urllib.request.urlopen(req).status == 200, "presigned PUT")
    check(on_disk("keyed/pre.jpg") == photo, "presigned PUT stored the body")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "keyed/pre.jpg"}, ExpiresIn=60)
    check(urllib.request.urlopen(url).read() == photo, "presigned GET")
    # and they expire: a PUT presigned for one second, sent three seconds later, is refused
    url = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "keyed/late.jpg"}, ExpiresIn=1)
    time.sleep(3)
    try:
        urllib.request.urlopen(urllib.request.Request(url, data=photo, method="PUT"))
        check(False, "an expired presigned PUT was taken")
    except urllib.error.HTTPError as e:
        check(e.code == 403 and b"expired" in e.read(), "expired presigned PUT %r" % e.code)
    check(not os.path.exists(os.path.join(ROOT, "keyed", "late.jpg")), "the expired PUT wrote nothing")
    # an unsigned PUT: refused
    req = urllib.request.Request(ENDPOINT + "/" + BUCKET + "/keyed/unsigned.jpg", data=photo, method="PUT")
    try:
        urllib.request.urlopen(req)
        check(False, "an unsigned PUT was taken")
    except urllib.error.HTTPError as e:
        check(e.code == 403 and b"needs a signature" in e.read(), "unsigned PUT %r" % e.code)
    check(not os.path.exists(os.path.join(ROOT, "keyed", "unsigned.jpg")), "the unsigned PUT wrote nothing")

if TLS:
    check(sum(streamed) >= 4, "boto3 and the AWS CLI sent %d aws-chunked bodies over HTTPS" % sum(streamed))
    print("%d aws-chunked bodies over HTTPS" % sum(streamed))

    # a chunked body changed after it was framed (its trailing CRC32 no longer holds), and one cut
    # short: refused, nothing written
    def corrupt(how):
        def before_send(request, **kwargs):
            if hasattr(request.body, "read"):
                request.reset_stream()
                body = request.body.read()
            else:
                body = request.body
            sent = request.headers.get("x-amz-content-sha256", b"")
            sent = sent if isinstance(sent, bytes) else sent.encode()
            check(sent.lower() == STREAMING and b"\r\n0\r\n" in body, "a framed body %r" % body[:40])
            request.body = how(body)
            request.headers["Content-Length"] = str(len(request.body))
        client = boto3.client("s3", endpoint_url=ENDPOINT, verify=False,
                              config=Config(retries={"max_attempts": 1}))
        client.meta.events.register("before-send.s3.PutObject", before_send)
        return client

    flipped = corrupt(lambda b: b.replace(b"photo-bytes", b"photo-BYTES", 1))
    got = status_of(lambda: flipped.put_object(Bucket=BUCKET, Key="tls/flipped.jpg", Body=b"photo-bytes"))
    check(got == (400, "BadDigest"), "a chunked body whose checksum fails: %r" % (got,))
    cut = corrupt(lambda b: b[:b.index(b"\r\n0\r\n") + 2])
    got = status_of(lambda: cut.put_object(Bucket=BUCKET, Key="tls/cut.jpg", Body=b"photo-bytes"))
    check(got == (400, "IncompleteBody"), "a chunked body cut short: %r" % (got,))
    check(not os.path.exists(os.path.join(ROOT, "tls")), "refused chunked bodies wrote nothing")

print("%d checks passed" % checks)
