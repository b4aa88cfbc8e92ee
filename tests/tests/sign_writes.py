"""Real clients' signatures for the Lambda emulator test (tests/tests/lambda.rs), unchanged clients:
boto3 presigns a PUT (AWS SigV4 in the query), Tencent's COS SDK makes a PUT's Authorization header
(q-sign-algorithm=sha1&…), each with the key given. Prints one JSON object.

    python3 sign_writes.py <host> <bucket> <key id> <secret>
"""

import json
import os
import sys

import boto3
from botocore.config import Config
from qcloud_cos import CosConfig, CosS3Client

HOST, BUCKET, KEY_ID, SECRET = sys.argv[1:5]
os.environ.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)

s3 = boto3.client("s3", endpoint_url="https://" + HOST, region_name="us-east-1", aws_access_key_id=KEY_ID,
                  aws_secret_access_key=SECRET,
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
sigv4 = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "keyed/sigv4.txt"},
                                  ExpiresIn=300)
cos = CosS3Client(CosConfig(Domain=HOST, Scheme="https", SecretId=KEY_ID, SecretKey=SECRET,
                            Region="ap-guangzhou"))
authorization = cos.get_auth(Method="PUT", Bucket=BUCKET, Key="keyed/cos.txt", Expired=300, SignHost=False)
print(json.dumps({"sigv4_url": sigv4, "cos_authorization": authorization}))
