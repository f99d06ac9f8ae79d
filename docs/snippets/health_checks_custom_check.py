# myproject/health.py
import boto3


def s3_reachable() -> None:
    boto3.client("s3").head_bucket(Bucket="blog-uploads")
