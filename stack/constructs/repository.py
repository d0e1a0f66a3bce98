"""The ECR repositories the stacks' images are pushed to: scanned on push, untagged images dropped after
14 days, kept when the stack is deleted (the images outlive a redeploy)."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ecr as ecr
from constructs import Construct


def image_repository(scope: Construct, construct_id: str, name: str, **options: Any) -> ecr.Repository:
    """`options` are ecr.Repository's other settings, left out of the template when not given."""
    return ecr.Repository(
        scope,
        construct_id,
        repository_name=name,
        image_scan_on_push=True,
        lifecycle_rules=[
            ecr.LifecycleRule(
                description="drop untagged images after 14 days",
                tag_status=ecr.TagStatus.UNTAGGED,
                max_image_age=Duration.days(14),
            )
        ],
        removal_policy=RemovalPolicy.RETAIN,
        **options,
    )
