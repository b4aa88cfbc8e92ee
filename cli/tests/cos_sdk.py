"""Tencent's own Python SDK (cos-python-sdk-v5, pinned in scripts/setup.sh) against `mogr serve`.

Run by cli/tests/cos_sdk.rs: `python3 cos_sdk.py <host:port> <served folder> <sample image>`. Each call
checks what the SDK returns — headers, parsed XML, files — not just that it did not raise.
"""

import hashlib
import json
import os
import sys
import tempfile

import crcmod
from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosServiceError

HOST, ROOT, SAMPLE = sys.argv[1], sys.argv[2], sys.argv[3]
BUCKET = "examplebucket-1250000000"

# A custom domain sends every request to mogr as http://<host>/<key>; the SDK signs as it would for
# COS, and mogr serve checks the signature when it holds the key (MOGR_KEYED=1).
client = CosS3Client(
    CosConfig(Domain=HOST, Scheme="http", SecretId="AKIDexample", SecretKey="secret", Region="ap-guangzhou")
)
crc64 = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, xorOut=0xFFFFFFFFFFFFFFFF, rev=True)

with open(SAMPLE, "rb") as f:
    photo = f.read()
checks = 0


def check(ok, what):
    global checks
    if not ok:
        raise AssertionError(what)
    checks += 1


def quoted_md5(body):
    return '"%s"' % hashlib.md5(body).hexdigest()


# put_object: the ETag the Java SDK compares with the body's MD5, the CRC64 the Go SDK checks, a request id
resp = client.put_object(Bucket=BUCKET, Key="sdk/photo.jpg", Body=photo, Metadata={"x-cos-meta-owner": "sdk-test"})
check(resp["ETag"] == quoted_md5(photo), "put_object ETag %r" % resp.get("ETag"))

# the README's keyless client: Anonymous=True, no region; downloads are public
anonymous = CosS3Client(CosConfig(Domain=HOST, Scheme="http", Anonymous=True))
body = anonymous.get_object(Bucket=BUCKET, Key="sdk/photo.jpg")["Body"].get_raw_stream().read()
check(body == photo, "an anonymous client's get_object")
check(resp["x-cos-hash-crc64ecma"] == str(crc64(photo)), "put_object CRC64 %r" % resp.get("x-cos-hash-crc64ecma"))
check(resp.get("x-cos-request-id"), "put_object request id")
check(os.path.exists(os.path.join(ROOT, "sdk", "photo.jpg")), "the object is in the served folder")

# get_object: the same bytes, ETag, CRC64 and user metadata
resp = client.get_object(Bucket=BUCKET, Key="sdk/photo.jpg")
body = resp["Body"].get_raw_stream().read()
check(body == photo, "get_object body")
check(resp["ETag"] == quoted_md5(photo), "get_object ETag")
check(resp["x-cos-hash-crc64ecma"] == str(crc64(photo)), "get_object CRC64")
check(resp.get("x-cos-meta-owner") == "sdk-test", "get_object metadata %r" % resp)
check(resp.get("x-cos-request-id"), "get_object request id")

# head_object: the same facts as GET, no body
resp = client.head_object(Bucket=BUCKET, Key="sdk/photo.jpg")
check(resp["ETag"] == quoted_md5(photo), "head_object ETag")
check(resp["Content-Length"] == str(len(photo)), "head_object length %r" % resp.get("Content-Length"))
check(resp.get("x-cos-meta-owner") == "sdk-test", "head_object metadata")
check(resp["Content-Type"] == "image/jpeg", "head_object type %r" % resp.get("Content-Type"))

# download_file: the SDK's resumable download compares the file's CRC64 with the object's
with tempfile.TemporaryDirectory() as tmp:
    dest = os.path.join(tmp, "copy.jpg")
    client.download_file(Bucket=BUCKET, Key="sdk/photo.jpg", DestFilePath=dest)
    with open(dest, "rb") as f:
        check(f.read() == photo, "download_file body")

# ci_put_object: upon upload, the original and each rule's output, reported as COS reports them
ops = {
    "is_pic_info": 1,
    "rules": [
        {"fileid": "small.heic", "rule": "imageMogr2/thumbnail/200x/format/heif"},
        {"fileid": "/sdk/out/small.webp", "rule": "imageMogr2/thumbnail/120x/format/webp"},
    ],
}
resp, data = client.ci_put_object(Bucket=BUCKET, Key="sdk/up.jpg", Body=photo, PicOperations=json.dumps(ops))
check(resp["ETag"] == quoted_md5(photo), "ci_put_object ETag")
original = data["OriginalInfo"]
check(original["Key"] == "sdk/up.jpg", "OriginalInfo Key %r" % original)
check(original["ETag"] == quoted_md5(photo), "OriginalInfo ETag")
check(original["ImageInfo"]["Format"] == "JPEG", "ImageInfo Format")
outputs = data["ProcessResults"]["Object"]
check([o["Key"] for o in outputs] == ["sdk/small.heic", "sdk/out/small.webp"], "ProcessResults %r" % outputs)
check(outputs[0]["Format"] == "heif" and outputs[0]["Width"] == "200", "heif output %r" % outputs[0])
with open(os.path.join(ROOT, "sdk", "out", "small.webp"), "rb") as f:
    webp = f.read()
check(webp[8:12] == b"WEBP" and outputs[1]["ETag"] == quoted_md5(webp), "the webp output is stored")

# without is_pic_info: OriginalInfo still names the input, without ImageInfo
resp, data = client.ci_put_object(
    Bucket=BUCKET, Key="sdk/up2.jpg", Body=photo,
    PicOperations=json.dumps({"rules": [{"fileid": "up2.avif", "rule": "imageMogr2/format/avif"}]}),
)
check(data["OriginalInfo"]["Key"] == "sdk/up2.jpg" and "ImageInfo" not in data["OriginalInfo"], "%r" % data)
check(data["ProcessResults"]["Object"]["Format"] == "avif", "one output %r" % data)

# the SDKs' own example rule (imageView2), the rule naming the COS bucket, a URL-encoded fileid
ops = {"rules": [
    {"fileid": "view.png", "rule": "imageView2/format/png", "bucket": BUCKET},
    {"fileid": "%E7%BC%A9%E7%95%A5.webp", "rule": "imageView2/1/w/90/h/60/format/webp"},
]}
resp, data = client.ci_put_object(Bucket=BUCKET, Key="sdk/view.jpg", Body=photo, PicOperations=json.dumps(ops))
outputs = data["ProcessResults"]["Object"]
check([o["Key"] for o in outputs] == ["sdk/view.png", "sdk/\u7f29\u7565.webp"], "imageView2 outputs %r" % outputs)
check(outputs[0]["Format"] == "png" and outputs[0]["Width"] == "640", "imageView2/format/png %r" % outputs[0])
check((outputs[1]["Width"], outputs[1]["Height"]) == ("90", "60"), "imageView2 mode 1 %r" % outputs[1])
check(os.path.exists(os.path.join(ROOT, "sdk", "\u7f29\u7565.webp")), "the decoded fileid is the file's name")

# ci_image_process: in cloud, over the object already stored
resp, data = client.ci_image_process(
    Bucket=BUCKET, Key="sdk/photo.jpg",
    PicOperations=json.dumps({"is_pic_info": 1, "rules": [{"fileid": "cloud.avif", "rule": "imageMogr2/thumbnail/100x/format/avif"}]}),
)
out = data["ProcessResults"]["Object"]
check(out["Key"] == "sdk/cloud.avif" and out["Width"] == "100", "ci_image_process %r" % data)
check(data["OriginalInfo"]["ImageInfo"]["Width"] == "640", "ci_image_process OriginalInfo")

# ci_get_object: upon download, to a file
with tempfile.TemporaryDirectory() as tmp:
    dest = os.path.join(tmp, "small.avif")
    resp = client.ci_get_object(Bucket=BUCKET, Key="sdk/photo.jpg", DestImagePath=dest, Rule="imageMogr2/thumbnail/160x/format/avif")
    with open(dest, "rb") as f:
        avif = f.read()
    check(avif[4:12] == b"ftypavif", "ci_get_object wrote an AVIF")
    check(resp["Content-Type"] == "image/avif", "ci_get_object type")
    check(resp["x-cos-hash-crc64ecma"] == str(crc64(avif)), "ci_get_object CRC64 of what was sent")

# ci_get_object with imageView2: mode 2 fits inside 100x100
with tempfile.TemporaryDirectory() as tmp:
    dest = os.path.join(tmp, "view.webp")
    client.ci_get_object(Bucket=BUCKET, Key="sdk/photo.jpg", DestImagePath=dest, Rule="imageView2/2/w/100/h/100/format/webp")
    with open(dest, "rb") as f:
        view = f.read()
    check(view[8:12] == b"WEBP", "ci_get_object imageView2 wrote a WebP")

# ci_get_image_info: the SDK hands back the JSON body as bytes
resp, data = client.ci_get_image_info(Bucket=BUCKET, Key="sdk/photo.jpg")
data = json.loads(data)
check(data["format"] == "jpeg" and data["width"] == "640" and data["height"] == "427", "ci_get_image_info %r" % data)

# ci_get_object with imageSlim: the same format, never more bytes, and COS's X-Slimflag
with tempfile.TemporaryDirectory() as tmp:
    dest = os.path.join(tmp, "slim.jpg")
    resp = client.ci_get_object(Bucket=BUCKET, Key="sdk/photo.jpg", DestImagePath=dest, Rule="imageSlim")
    with open(dest, "rb") as f:
        slim = f.read()
    check(slim[:3] == b"\xff\xd8\xff", "imageSlim wrote a JPEG")
    check(len(slim) <= len(photo), "imageSlim is not larger: %d > %d" % (len(slim), len(photo)))
    check(resp.get("X-Slimflag", resp.get("x-slimflag")) in ("1", "2"), "X-Slimflag %r" % resp)

# errors are parsed by the SDK: code, message, status, request id
for call, want_status, want_code in [
    (lambda: client.get_object(Bucket=BUCKET, Key="sdk/missing.jpg"), 404, "NoSuchKey"),
    (lambda: client.ci_get_object(Bucket=BUCKET, Key="sdk/photo.jpg", DestImagePath=os.devnull, Rule="imageMogr2/thumbnail/80xx"), 400, "InvalidArgument"),
    # a processor mogr does not implement is refused, never answered with the untouched original
    (lambda: client.ci_get_object(Bucket=BUCKET, Key="sdk/photo.jpg", DestImagePath=os.devnull, Rule="watermark/3/type/1"), 400, "InvalidArgument"),
]:
    try:
        call()
        check(False, "an error was expected")
    except CosServiceError as e:
        check(e.get_status_code() == want_status, "status %r" % e.get_status_code())
        check(e.get_error_code() == want_code, "code %r" % e.get_error_code())
        check(e.get_error_msg(), "message")
        check(e.get_request_id(), "request id")

# upload_file: above its part size (1 MB) the SDK goes multipart — list uploads, initiate, parts, complete
big = os.urandom(2_500_000)
with tempfile.TemporaryDirectory() as tmp:
    src = os.path.join(tmp, "big.bin")
    with open(src, "wb") as f:
        f.write(big)
    resp = client.upload_file(Bucket=BUCKET, Key="sdk/big.bin", LocalFilePath=src, PartSize=1, MAXThread=2)
check(resp.get("Key") == "sdk/big.bin" and resp.get("ETag"), "upload_file result %r" % resp)
with open(os.path.join(ROOT, "sdk", "big.bin"), "rb") as f:
    check(f.read() == big, "the three parts joined in order")
resp = client.head_object(Bucket=BUCKET, Key="sdk/big.bin")
check(resp["x-cos-hash-crc64ecma"] == str(crc64(big)), "multipart object CRC64")
check(client.list_multipart_uploads(Bucket=BUCKET, Prefix="sdk/").get("Upload") is None, "no upload left in progress")

# the multipart calls one by one, with Pic-Operations on complete (as COS honours them)
up = client.create_multipart_upload(Bucket=BUCKET, Key="sdk/parts.jpg", ContentType="image/jpeg")
uid = up["UploadId"]
half = len(photo) // 2
etags = [client.upload_part(Bucket=BUCKET, Key="sdk/parts.jpg", Body=chunk, PartNumber=n, UploadId=uid)["ETag"]
         for n, chunk in [(1, photo[:half]), (2, photo[half:])]]
listed = client.list_parts(Bucket=BUCKET, Key="sdk/parts.jpg", UploadId=uid)
check([p["ETag"] for p in listed["Part"]] == etags, "list_parts %r" % listed)
uploads = client.list_multipart_uploads(Bucket=BUCKET, Prefix="sdk/parts")["Upload"]
uploads = uploads if isinstance(uploads, list) else [uploads]  # one element comes as a dict
check([u["UploadId"] for u in uploads] == [uid], "list_multipart_uploads %r" % uploads)
done = client.complete_multipart_upload(
    Bucket=BUCKET, Key="sdk/parts.jpg", UploadId=uid,
    MultipartUpload={"Part": [{"PartNumber": 1, "ETag": etags[0]}, {"PartNumber": 2, "ETag": etags[1]}]},
    PicOperations=json.dumps({"rules": [{"fileid": "parts.avif", "rule": "imageMogr2/thumbnail/64x/format/avif"}]}),
)
check(done["Key"] == "sdk/parts.jpg" and done["ETag"] == quoted_md5(photo), "complete %r" % done)
check(done["ProcessResults"]["Object"]["Key"] == "sdk/parts.avif", "complete ran the rule %r" % done)
check(os.path.exists(os.path.join(ROOT, "sdk", "parts.avif")), "the rule's output is stored")
resp = client.get_object(Bucket=BUCKET, Key="sdk/parts.jpg")
check(resp["Body"].get_raw_stream().read() == photo and resp["Content-Type"] == "image/jpeg", "completed object")
# abort: the parts go, and the id is unknown afterwards
up = client.create_multipart_upload(Bucket=BUCKET, Key="sdk/gone.jpg")
client.upload_part(Bucket=BUCKET, Key="sdk/gone.jpg", Body=photo, PartNumber=1, UploadId=up["UploadId"])
client.abort_multipart_upload(Bucket=BUCKET, Key="sdk/gone.jpg", UploadId=up["UploadId"])
try:
    client.list_parts(Bucket=BUCKET, Key="sdk/gone.jpg", UploadId=up["UploadId"])
    check(False, "list_parts after abort")
except CosServiceError as e:
    check(e.get_status_code() == 404 and e.get_error_code() == "NoSuchUpload", "after abort %r" % e.get_error_code())

# list_objects: what the folder holds, one level deep with a delimiter, page by page with a marker.
# The SDK always asks for encoding-type=url and decodes the keys again, unless its caller asks for it.
here = os.path.join(ROOT, "sdk")
files = sorted("sdk/" + n for n in os.listdir(here) if os.path.isfile(os.path.join(here, n)))
folders = sorted("sdk/" + n + "/" for n in os.listdir(here) if os.path.isdir(os.path.join(here, n)))
listed = client.list_objects(Bucket=BUCKET, Prefix="sdk/", Delimiter="/")
check(sorted(c["Key"] for c in listed.get("Contents", [])) == files, "list_objects keys %r" % listed)
check(sorted(p["Prefix"] for p in listed.get("CommonPrefixes", [])) == folders, "list_objects folders %r" % listed)
check(listed["IsTruncated"] == "false", "list_objects IsTruncated %r" % listed["IsTruncated"])
with open(os.path.join(here, "parts.jpg"), "rb") as f:
    parts_md5 = quoted_md5(f.read())
entry = [c for c in listed["Contents"] if c["Key"] == "sdk/parts.jpg"][0]
check(entry["ETag"] == parts_md5 and entry["Size"] == str(len(photo)), "list_objects entry %r" % entry)
raw = client.list_objects(Bucket=BUCKET, Prefix="sdk/", Delimiter="/", EncodingType="url")
check("sdk/%E7%BC%A9%E7%95%A5.webp" in [c["Key"] for c in raw["Contents"]], "url-encoded keys %r" % raw)
paged, marker = [], ""
while True:
    page = client.list_objects(Bucket=BUCKET, Prefix="sdk/", Delimiter="/", MaxKeys=2, Marker=marker)
    got = [c["Key"] for c in page.get("Contents", [])] + [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    check(len(got) <= 2, "max-keys 2 %r" % got)
    paged += got
    if page["IsTruncated"] != "true":
        break
    marker = page["NextMarker"]
check(sorted(paged) == sorted(files + folders), "paged listing %r" % paged)
top = client.list_objects(Bucket=BUCKET, Delimiter="/")
check(any(p["Prefix"] == "sdk/" for p in top.get("CommonPrefixes", [])), "the bucket's top level %r" % top)
check(all(not c["Key"].startswith(".mogr") for c in top.get("Contents", [])), "mogr's bookkeeping is not listed")

# copy_object: COS's copy source (<bucket>-<appid>.cos.<region>.myqcloud.com/<key>), metadata copied or
# replaced; a missing source is 404 and writes nothing
source = {"Bucket": BUCKET, "Key": "sdk/photo.jpg", "Region": "ap-guangzhou"}
resp = client.copy_object(Bucket=BUCKET, Key="sdk/copy.jpg", CopySource=source)
check(resp["ETag"] == quoted_md5(photo), "copy_object ETag %r" % resp)
with open(os.path.join(ROOT, "sdk", "copy.jpg"), "rb") as f:
    check(f.read() == photo, "copy_object wrote the source's bytes")
check(client.head_object(Bucket=BUCKET, Key="sdk/copy.jpg").get("x-cos-meta-owner") == "sdk-test", "copied metadata")
client.copy_object(Bucket=BUCKET, Key="sdk/copy.jpg", CopySource=source, CopyStatus="Replaced",
                   Metadata={"x-cos-meta-owner": "replaced"})
check(client.head_object(Bucket=BUCKET, Key="sdk/copy.jpg").get("x-cos-meta-owner") == "replaced", "replaced metadata")
try:
    client.copy_object(Bucket=BUCKET, Key="sdk/copy.jpg", CopySource=dict(source, Key="sdk/missing.jpg"))
    check(False, "copy_object from a missing source")
except CosServiceError as e:
    check(e.get_status_code() == 404, "copy from a missing source: %r" % e.get_status_code())

# get_object with a Range: 206 and those bytes
resp = client.get_object(Bucket=BUCKET, Key="sdk/photo.jpg", Range="bytes=10-19")
check(resp["Body"].get_raw_stream().read() == photo[10:20], "ranged get_object body")
check(resp["Content-Range"] == "bytes 10-19/%d" % len(photo), "ranged get_object %r" % resp.get("Content-Range"))

# delete_objects: each key deleted, listed in the answer
resp = client.delete_objects(Bucket=BUCKET, Delete={"Object": [{"Key": "sdk/copy.jpg"}, {"Key": "sdk/none.jpg"}]})
deleted = sorted(d["Key"] for d in resp.get("Deleted", []))
check(deleted == ["sdk/copy.jpg", "sdk/none.jpg"], "delete_objects %r" % resp)
check(not os.path.exists(os.path.join(ROOT, "sdk", "copy.jpg")), "delete_objects deleted the key")

# delete_object: gone afterwards; deleting again is no error
resp = client.delete_object(Bucket=BUCKET, Key="sdk/photo.jpg")
check(resp.get("x-cos-request-id"), "delete_object request id")
check(not os.path.exists(os.path.join(ROOT, "sdk", "photo.jpg")), "deleted from the folder")
try:
    client.head_object(Bucket=BUCKET, Key="sdk/photo.jpg")
    check(False, "head_object after delete")
except CosServiceError as e:
    check(e.get_status_code() == 404, "head after delete %r" % e.get_status_code())
client.delete_object(Bucket=BUCKET, Key="sdk/photo.jpg")

# With the server holding this script's key, every call above was signature-checked; here: a wrong
# secret, an unknown key, an expired signature and none at all are refused and write nothing, and
# presigned URLs work for GET and PUT.
if os.environ.get("MOGR_KEYED") == "1":
    import urllib.error
    import urllib.request

    def refused(cos, code, what):
        try:
            cos.put_object(Bucket=BUCKET, Key="keyed/refused.jpg", Body=photo)
            check(False, "%s: a PUT was taken" % what)
        except CosServiceError as e:
            check(e.get_status_code() == 403 and e.get_error_code() == code,
                  "%s: %r %r" % (what, e.get_status_code(), e.get_error_code()))

    for secret_id, secret_key, code in [("AKIDexample", "wrong", "SignatureDoesNotMatch"),
                                        ("AKIDunknown", "secret", "InvalidAccessKeyId")]:
        other = CosS3Client(CosConfig(Domain=HOST, Scheme="http", SecretId=secret_id, SecretKey=secret_key,
                                      Region="ap-guangzhou"))
        refused(other, code, code)
    check(not os.path.exists(os.path.join(ROOT, "keyed")), "a refused write wrote nothing")
    base = "http://%s/keyed/" % HOST
    url = client.get_presigned_url(Bucket=BUCKET, Key="keyed/pre.jpg", Method="PUT", Expired=60)
    check(urllib.request.urlopen(urllib.request.Request(url, data=photo, method="PUT")).status == 200,
          "presigned PUT")
    with open(os.path.join(ROOT, "keyed", "pre.jpg"), "rb") as f:
        check(f.read() == photo, "presigned PUT stored the body")
    url = client.get_presigned_url(Bucket=BUCKET, Key="keyed/pre.jpg", Method="GET", Expired=60)
    check(urllib.request.urlopen(url).read() == photo, "presigned GET")
    # a signature whose window has passed (Expired counts from now - 60 s in the SDK)
    url = client.get_presigned_url(Bucket=BUCKET, Key="keyed/late.jpg", Method="PUT", Expired=-30)
    for target, what in [(url, "an expired signature"), (base + "unsigned.jpg", "no signature")]:
        try:
            urllib.request.urlopen(urllib.request.Request(target, data=photo, method="PUT"))
            check(False, "%s: a PUT was taken" % what)
        except urllib.error.HTTPError as e:
            check(e.code == 403, "%s: %r" % (what, e.code))
    check(sorted(os.listdir(os.path.join(ROOT, "keyed"))) == ["pre.jpg"], "refused PUTs wrote nothing")

print("cos-python-sdk-v5: %d checks passed" % checks)
