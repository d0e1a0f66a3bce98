"""S3 buckets' public access blocks (moto's bucket model drops them) and bucket policies (the CDK
bootstrap stack sets one on its assets bucket)."""

from __future__ import annotations

import json
from typing import Any

from moto.s3.models import FakeBucket, S3Backend, s3_backends
from moto.utilities.utils import get_partition

from devenv.emulator.models.base import DevenvModel, ModelHooks, moto_create, required


def backend(account_id: str, region_name: str) -> S3Backend:
    return s3_backends[account_id][get_partition(region_name)]


def enforceable(document: dict[str, Any]) -> dict[str, Any]:
    """The policy moto is given: without conditional Deny statements.

    moto enforces a Deny but ignores its Condition, so the bootstrap's "deny unless TLS" would deny every
    upload. The full policy is kept on the model; GetBucketPolicy returns what moto enforces.
    """
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    kept = [s for s in statements if not (s.get("Effect") == "Deny" and s.get("Condition"))]
    return {**document, "Statement": kept}


class Bucket(ModelHooks, FakeBucket):
    """AWS::S3::Bucket: moto's, plus PublicAccessBlockConfiguration (GetPublicAccessBlock reads it back)."""

    TYPE = "AWS::S3::Bucket"
    NAME_PROPERTY = "BucketName"

    @classmethod
    def create_resource(
        cls, name: str, properties: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> FakeBucket:
        bucket = moto_create(FakeBucket, name, properties, account_id, region_name, **kwargs)
        _block_public_access(bucket.name, properties, account_id, region_name)
        return bucket

    @classmethod
    def update_resource(
        cls, original: Any, name: str, properties: Any, account_id: str, region_name: str
    ) -> FakeBucket:
        bucket = FakeBucket.update_from_cloudformation_json(
            original, name, {"Properties": properties}, account_id, region_name
        )
        _block_public_access(bucket.name, properties, account_id, region_name)
        return bucket


def _block_public_access(bucket: str, properties: Any, account_id: str, region_name: str) -> None:
    config = (properties or {}).get("PublicAccessBlockConfiguration")
    if config:
        blocks = {key: str(value).lower() == "true" for key, value in config.items()}
        backend(account_id, region_name).put_public_access_block(bucket, blocks)


class BucketPolicy(DevenvModel):
    """AWS::S3::BucketPolicy; Ref is the bucket name."""

    TYPE = "AWS::S3::BucketPolicy"

    def __init__(self, bucket: str, document: dict[str, Any]) -> None:
        self.physical_id = bucket
        self.document = document

    @classmethod
    def create_resource(
        cls, name: str, properties: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> BucketPolicy:
        bucket = required(properties, "Bucket", cls.TYPE)
        document = required(properties, "PolicyDocument", cls.TYPE)
        if isinstance(document, str):
            document = json.loads(document)
        backend(account_id, region_name).put_bucket_policy(bucket, json.dumps(enforceable(document)).encode())
        return cls(bucket, document)

    @classmethod
    def update_resource(
        cls, original: BucketPolicy, name: str, properties: Any, account_id: str, region_name: str
    ) -> BucketPolicy:
        return cls.create_resource(name, properties, account_id, region_name)

    def delete(self, account_id: str, region_name: str) -> None:
        s3 = backend(account_id, region_name)
        if self.physical_id in s3.buckets:
            s3.delete_bucket_policy(self.physical_id)
