#!/usr/bin/env python3
"""Writes events/: sample Lambda events for local invokes and the end-to-end tests. Bucket: mogr-examples."""
import base64, json, sys

out = sys.argv[1] if len(sys.argv) > 1 else "events"
BUCKET = "mogr-examples"

def http_event(method, path, query, headers=None, body=None):
    ctx = {
        "accountId": "123456789012", "apiId": "mograpi", "domainName": "mograpi.execute-api.us-east-1.amazonaws.com",
        "domainPrefix": "mograpi",
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "curl/8"},
        "requestId": f"req-{method.lower()}", "routeKey": f"{method} /{{key+}}", "stage": "$default",
        "time": "24/Nov/2026:09:00:00 +0000", "timeEpoch": 1795510800000,
    }
    ev = {
        "version": "2.0", "routeKey": f"{method} /{{key+}}", "rawPath": path, "rawQueryString": query,
        "headers": {"host": ctx["domainName"], "user-agent": "curl/8", **(headers or {})},
        "pathParameters": {"key": path.lstrip("/")}, "requestContext": ctx, "isBase64Encoded": False,
    }
    if query:
        ev["queryStringParameters"] = {query: ""}
    if body is not None:
        ev["body"] = base64.b64encode(body).decode()
        ev["isBase64Encoded"] = True
    return ev

def write(name, ev):
    with open(f"{out}/{name}", "w") as f:
        json.dump(ev, f, indent=2, ensure_ascii=False)
        f.write("\n")

write("apigw-get-heif.json", http_event("GET", "/photo.png", "imageMogr2/thumbnail/320x/format/heif"))
write("apigw-get-info.json", http_event("GET", "/photo.jpg", "imageInfo"))
ops = {"is_pic_info": 1, "rules": [
    {"fileid": "/processed/photo.heic", "rule": "imageMogr2/format/heif"},
    {"fileid": "photo-small.avif", "rule": "imageMogr2/thumbnail/200x/format/avif"}]}
write("apigw-post-image-process.json",
      http_event("POST", "/photo.jpg", "image_process", {"pic-operations": json.dumps(ops)}))
put_ops = {"is_pic_info": 1, "rules": [{"fileid": "animated.webp", "rule": "imageMogr2/format/webp"}]}
write("apigw-put-pic-operations.json",
      http_event("PUT", "/uploads/animated.gif", "",
                 {"pic-operations": json.dumps(put_ops), "content-type": "image/gif"},
                 open("examples/animated.gif", "rb").read()))
s3 = {"Records": [{
    "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventTime": "2026-11-24T09:00:00.000Z",
    "eventName": "ObjectCreated:Put", "userIdentity": {"principalId": "AWS:EXAMPLE"},
    "requestParameters": {"sourceIPAddress": "203.0.113.7"},
    "responseElements": {"x-amz-request-id": "EXAMPLE", "x-amz-id-2": "EXAMPLE"},
    "s3": {"s3SchemaVersion": "1.0", "configurationId": "mogr-upload",
           "bucket": {"name": BUCKET, "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": f"arn:aws:s3:::{BUCKET}"},
           "object": {"key": "uploads/new+photo.jpg", "size": 112525, "eTag": "0123456789abcdef0123456789abcdef",
                      "sequencer": "0055AED6DCD90281E5"}}}]}
write("s3-put.json", s3)
print("wrote", out)
