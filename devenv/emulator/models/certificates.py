"""ACM certificates: requested through moto's ACM, so DescribeCertificate returns them (never issued for real)."""

from __future__ import annotations

from typing import Any

from moto.acm.models import AWSCertificateManagerBackend, acm_backends

from devenv.emulator.models.base import DevenvModel, required, tag_list


def backend(account_id: str, region_name: str) -> AWSCertificateManagerBackend:
    return acm_backends[account_id][region_name]


class Certificate(DevenvModel):
    """AWS::CertificateManager::Certificate; Ref is the ARN. DNS validation is not waited for."""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CertificateManager::Certificate"

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    def __init__(self, arn: str) -> None:
        self.physical_id = arn

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Certificate:
        properties = cloudformation_json["Properties"]
        arn = backend(account_id, region_name).request_certificate(
            domain_name=required(properties, "DomainName", cls.cloudformation_type()),
            idempotency_token=None,  # type: ignore[arg-type]
            subject_alt_names=properties.get("SubjectAlternativeNames") or [],
            tags=tag_list(properties),
            cert_authority_arn=properties.get("CertificateAuthorityArn"),
        )
        return cls(arn)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Certificate,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> Certificate:
        """Any change to a certificate replaces it, as on AWS."""
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )

    def delete(self, account_id: str, region_name: str) -> None:
        backend(account_id, region_name).delete_certificate(self.physical_id)
